"""Staging tables' fixed shape (staging/tables.py): the columns and dtypes every writer expects."""

import numpy as np
import pandas as pd

from ploomes_cx.staging.tables import shape


def test_missing_text_is_none_whatever_marked_it_and_ids_and_dates_are_typed() -> None:
    frame = pd.DataFrame(
        {
            "ploomes_id": [1.0, 2.0],
            "email": pd.Series(["a@x.com", np.nan], dtype=object),  # NaN, as a reindex leaves it
            "phone": pd.Series([None, "+5511987654321"], dtype=object),
            "changed_at": ["2026-11-02 12:00", "2026-11-03 12:00"],
        }
    )
    out = shape(frame, ["ploomes_id", "email", "phone", "document", "changed_at"])
    assert out["ploomes_id"].dtype == "int64"
    assert out["email"].tolist() == ["a@x.com", None]
    assert out["phone"].tolist() == [None, "+5511987654321"]
    assert out["document"].tolist() == [None, None]  # a column the frame lacks
    assert str(out["changed_at"].dtype) == "datetime64[us]"
