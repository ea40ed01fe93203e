"""The staging tables after a change, from the tables before it and a re-stage of what the change
reached (docs/incremental-staging.md): the rows made from reached records are replaced, every
other row is kept as it was.

Which records made a row: a client is its survivor's (its aliases are in the same identifier
component, so reached together), a contact and a rejection name their record, a merged cluster
its survivor. So far the parties alone (organizations and persons, one Id space): contracts and
timeline entries, whose Ids are of other spaces, will be spliced by kind when the re-stage takes
them; look-alike candidates have their own reach (the fuzzy-name window) and are not spliced yet.
"""

from __future__ import annotations

import pandas as pd

# per table: the column naming the Ploomes record a row was made from, and, for the clusters,
# which of its rows this splice replaces
MADE_FROM = {"clients": "ploomes_id", "contacts": "ploomes_id", "rejected": "ploomes_id"}
SPLICED_CLUSTERS = ("merged",)


def splice_table(
    before: pd.DataFrame, restaged: pd.DataFrame, reach: set[int], made_from: str
) -> pd.DataFrame:
    """`before` without the rows made from reached records, then the re-stage's rows."""
    kept = before[~before[made_from].isin(reach)]
    parts = [p for p in (kept, restaged) if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else before.iloc[0:0]


def splice_clusters(before: pd.DataFrame, restaged: pd.DataFrame, reach: set[int]) -> pd.DataFrame:
    """The merged-cluster rows of reached survivors replaced; the other kinds kept as they were."""
    spliced = before["kind"].isin(SPLICED_CLUSTERS)
    replaced = spliced & before["survivor_id"].isin(reach)
    fresh = restaged[restaged["kind"].isin(SPLICED_CLUSTERS)]
    parts = [p for p in (before[~replaced], fresh) if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else before.iloc[0:0]
