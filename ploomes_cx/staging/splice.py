"""The staging tables after a change, from the tables before it and a re-stage of what the change
reached (docs/incremental-staging.md): the rows made from reached records are replaced, every
other row is kept as it was.

Which record made a row, by Id space (`tables.ID_SPACES`: a deal and a contact may share an Id):
a client is its survivor's (its aliases are in the same identifier component, so reached
together), a contact, contract, timeline entry and rejection name their record, a merged cluster
its survivor. Look-alike candidates have their own reach (the fuzzy-name window) and are not
spliced yet.
"""

from __future__ import annotations

import pandas as pd

from ploomes_cx.ploomes.payloads import TIMELINE_SOURCES
from ploomes_cx.staging.tables import ID_SPACES

SPLICED = ("clients", "contacts", "contracts", "timeline", "rejected")
SPLICED_CLUSTERS = ("merged",)
# a timeline row's `kind` (the CustomerX prefix) -> the Ploomes entity it was made from
TIMELINE_SPACES = {source.prefix: source.entity for source in TIMELINE_SOURCES.values()}


def made_from(table: str, frame: pd.DataFrame) -> pd.MultiIndex:
    """(Id space, Ploomes Id) of the record each row of `table` was made from."""
    if table in ("clients", "contacts"):
        spaces = pd.Series("contacts", index=frame.index)
    elif table == "contracts":
        spaces = pd.Series("deals", index=frame.index)
    elif table == "timeline":
        spaces = frame["kind"].map(TIMELINE_SPACES)
    elif table == "rejected":
        spaces = frame["entity"].map(lambda e: ID_SPACES.get(e, e))
    else:  # clusters: merged ones, by survivor
        return pd.MultiIndex.from_arrays([pd.Series("contacts", index=frame.index), frame["survivor_id"]])
    return pd.MultiIndex.from_arrays([spaces, frame["ploomes_id"]])


def _reached(keys: pd.MultiIndex, reach: dict[str, set[int]]) -> pd.Series:
    wanted = pd.MultiIndex.from_tuples(
        [(space, int(i)) for space, ids in reach.items() for i in ids] or [("", -1)]
    )
    return pd.Series(keys.isin(wanted), index=None)


def splice_table(
    table: str, before: pd.DataFrame, restaged: pd.DataFrame, reach: dict[str, set[int]]
) -> pd.DataFrame:
    """`before` without the rows made from reached records, then the re-stage's rows."""
    kept = before[~_reached(made_from(table, before), reach).to_numpy()]
    parts = [p for p in (kept, restaged) if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else before.iloc[0:0]


def splice_clusters(before: pd.DataFrame, restaged: pd.DataFrame, reach: dict[str, set[int]]) -> pd.DataFrame:
    """The merged-cluster rows of reached survivors replaced; the other kinds kept as they were."""
    spliced = before["kind"].isin(SPLICED_CLUSTERS).to_numpy()
    replaced = spliced & _reached(made_from("clusters", before), reach).to_numpy()
    fresh = restaged[restaged["kind"].isin(SPLICED_CLUSTERS)]
    parts = [p for p in (before[~replaced], fresh) if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else before.iloc[0:0]
