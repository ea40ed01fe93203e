"""The rejected list shows each offending value as text, whatever its column held."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ploomes_cx.staging.rejects import Rejects


def test_values_are_listed_as_text_and_missing_ones_as_null() -> None:
    frame = pd.DataFrame(
        {
            "ploomes_id": [1, 2, 3],
            "window_start": pd.to_datetime(["2026-11-01"] * 3),
            "other": ["x", "y", "z"],
        }
    )
    every = pd.Series([True, True, True])
    rejects = Rejects("run-1")
    rejects.add("persons", frame, every, "company_id", pd.Series([999.0, np.nan, 7.0]), "client_not_found")
    rejects.add("persons", frame, every, "id", pd.Series(pd.array([5, None, 6], dtype="Int64")), "rule")
    rejects.add(
        "persons", frame, pd.Series([True, False, True]), "email", pd.Series(["A@x", None, None]), "rule"
    )
    out = rejects.frame()
    assert out["value"].tolist() == ["999.0", None, "7.0", "5", None, "6", "A@x", None]
    assert out["ploomes_id"].tolist() == [1, 2, 3, 1, 2, 3, 1, 3]
    assert list(out.columns) == [
        "entity",
        "ploomes_id",
        "field",
        "value",
        "rule",
        "outcome",
        "window_start",
        "run_id",
    ]
