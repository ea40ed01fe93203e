"""The one way staging lists what did not make it: a rejected record or a cleared field.

Every staging module and the contract validation add rows here, so `<mapping>.rejected` has one
shape whoever wrote the row: the source entity, the Ploomes id, the field, its value, the rule it
broke, the outcome (`rejected` for a record, `field_cleared` for a field) and the record's window.
"""

from __future__ import annotations

import pandas as pd
from pandas.api.types import infer_dtype

REJECTED_COLUMNS = ["entity", "ploomes_id", "field", "value", "rule", "outcome", "window_start", "run_id"]
TEXT_COLUMNS = ("entity", "field", "value", "rule", "outcome", "run_id")


def _aligned(value: pd.Series | str, index: pd.Index) -> pd.Series | str:
    return value if isinstance(value, str) else pd.Series(value, index=index).astype(object)


class Rejects:
    def __init__(self, run_id: str) -> None:
        self.parts: list[pd.DataFrame] = []
        self.run_id = run_id

    def add(
        self,
        entity: str,
        frame: pd.DataFrame,
        mask: pd.Series,
        field_name: pd.Series | str,
        values: pd.Series,
        rule: pd.Series | str,
        outcome: str = "rejected",
    ) -> None:
        """List the rows of `frame` selected by `mask`; `values`, and `rule` or `field_name` when
        they vary per row, are aligned with `frame`."""
        if not mask.any():
            return
        frame = frame.loc[mask, ["ploomes_id", "window_start"]]  # not every column of a million rows
        text = _aligned(values[mask], frame.index)
        if infer_dtype(text, skipna=True) not in ("string", "empty"):  # numbers, ids: shown as text
            text = text.map(lambda v: None if pd.isna(v) else str(v))
        self.parts.append(
            pd.DataFrame(
                {
                    "entity": entity,
                    "ploomes_id": frame["ploomes_id"].astype("int64"),
                    "field": field_name
                    if isinstance(field_name, str)
                    else _aligned(field_name[mask], frame.index),
                    "value": text.where(text.notna(), None),
                    "rule": rule if isinstance(rule, str) else _aligned(rule[mask], frame.index),
                    "outcome": outcome,
                    "window_start": pd.to_datetime(frame["window_start"]).astype("datetime64[us]"),
                    "run_id": self.run_id,
                },
                index=frame.index,
            )
        )

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            out = pd.DataFrame(columns=REJECTED_COLUMNS)
        else:
            out = pd.concat(self.parts, ignore_index=True)[REJECTED_COLUMNS]
        out["ploomes_id"] = out["ploomes_id"].astype("int64")
        out["window_start"] = pd.to_datetime(out["window_start"]).astype("datetime64[us]")
        for col in TEXT_COLUMNS:
            out[col] = out[col].astype(object)
        return out
