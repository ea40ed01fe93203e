"""The staging tables' Dagster types: a frame staging validated is not validated a second time by
the output's type check, and any other frame is."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pandera.pandas as pa
import pytest

from ploomes_cx.staging.rejects import Rejects
from ploomes_cx.staging.schemas import DAGSTER_TYPES, MODELS, split_valid, validate
from ploomes_cx.staging.text_checks import Text


def _rejected(outcome: str = "rejected") -> pd.DataFrame:
    frame = pd.DataFrame({"ploomes_id": [1, 2], "window_start": pd.to_datetime(["2026-11-01"] * 2)})
    rejects = Rejects("run-1")
    rejects.add(
        "persons", frame, pd.Series([True, True]), "email", pd.Series(["a", "b"]), "email_syntax", outcome
    )
    return rejects.frame()


def test_a_validated_frame_passes_its_type_check_without_a_second_validation() -> None:
    frame = validate(MODELS["rejected"], _rejected())
    result = dg.check_dagster_type(DAGSTER_TYPES["rejected"], frame)
    assert result.success
    assert "when staged" in (result.description or "")


def test_a_frame_nobody_validated_is_validated_by_the_type_check() -> None:
    broken = _rejected(outcome="vanished")  # not one of the allowed outcomes
    assert not dg.check_dagster_type(DAGSTER_TYPES["rejected"], broken).success
    assert dg.check_dagster_type(DAGSTER_TYPES["rejected"], _rejected()).success


def test_a_frame_derived_from_a_validated_one_is_validated_again() -> None:
    """pandas copies `attrs` to derived frames: the stamp must not vouch for them."""
    frame = validate(MODELS["rejected"], _rejected())
    derived = pd.concat([frame, frame.assign(outcome="vanished")], ignore_index=True)
    derived.attrs = dict(frame.attrs)
    assert not dg.check_dagster_type(DAGSTER_TYPES["rejected"], derived).success


def test_split_valid_keeps_the_rows_that_pass_and_vouches_for_them() -> None:
    frame = pd.concat([_rejected(), _rejected("vanished")], ignore_index=True)
    valid, cases = split_valid(MODELS["rejected"], frame)
    assert list(valid.index) == [0, 1]
    assert set(cases["index"].astype(int)) == {2, 3}
    assert "when staged" in (dg.check_dagster_type(DAGSTER_TYPES["rejected"], valid).description or "")


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        (["a", None, "b"], object),
        ([None, None, None], object),
        (["a", 3, None], object),
        ([b"bytes", "a", "b"], object),
        (["a", pd.NA, float("nan")], object),
        ([1.5, float("nan"), 2.0], "float64"),
    ],
)
def test_text_fails_exactly_the_values_pandera_str_fails(values: list[object], dtype: object) -> None:
    """The fast `Text` check accepts and rejects the same values, with the same failure cases,
    as Pandera's own `str` check it replaces."""
    frame = pd.DataFrame({"c": pd.Series(values, dtype=dtype)})

    def failures(dtype: object) -> list[tuple[object, object]]:
        schema = pa.DataFrameSchema({"c": pa.Column(dtype, nullable=True)})
        try:
            schema.validate(frame, lazy=True)
        except pa.errors.SchemaErrors as exc:
            return sorted(
                zip(exc.failure_cases["index"], exc.failure_cases["failure_case"].astype(str), strict=True)
            )
        return []

    assert failures(Text) == failures(str)
