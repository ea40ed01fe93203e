"""Deduplication: which records are the same CustomerX record, and which only look alike.

Identifier matching is the one identity rule (`ploomes_cx/identity.py`), shared with adoption and
the staging check. Clusters are grown greedily with a union-find:
identifiers are processed in priority order, and inside a group of records sharing a value,
records join the cluster of the most recently changed compatible record first. A cluster keeps
one value per identifier (the survivor's, filled from the others when it has none), so the rule
that compares two records also compares two clusters.

Survivor: the most recently changed record (ties: the lower Ploomes Id, the older record); the
others become its aliases, so whatever points at them follows the survivor.

Fuzzy candidates (same folded company name, or near-identical names, with different or missing
identifiers) are only reported, for a person to decide; they never merge.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from ploomes_cx.identity import IDENTIFIER_COLUMNS, same_record
from ploomes_cx.staging.normalize import company_key

FUZZY_THRESHOLD = 92.0
NEIGHBOURS = 20  # sorted-neighbourhood window: each distinct name is compared with the next 20


@dataclass
class Clusters:
    """Per input row: the survivor's row position and the identifier that joined its cluster."""

    survivor: np.ndarray
    matched_by: list[str | None]
    values: dict[str, list[object]]  # identifier column -> cluster value per row (the survivor's)


def cluster_by_identifiers(frame: pd.DataFrame, identifiers: list[str]) -> Clusters:
    """`frame` needs `ploomes_id`, `changed_at` and the normalized identifier columns."""
    n = len(frame)
    order = np.lexsort((frame["ploomes_id"].to_numpy(), -frame["changed_at"].to_numpy().astype("int64")))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)  # 0 = most recent
    parent = np.arange(n)
    columns = [IDENTIFIER_COLUMNS[i] for i in identifiers]
    tracked = list(dict.fromkeys(["document", *columns]))
    value = {c: frame[c].where(frame[c].notna(), None).tolist() for c in tracked}
    matched_by: list[str | None] = [None] * n

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return int(x)

    def compatible(a: int, b: int) -> bool:
        """The identity rule on the two clusters' values (each keeps one value per identifier)."""
        return same_record({c: value[c][a] for c in tracked}, {c: value[c][b] for c in tracked}, identifiers)

    def union(a: int, b: int, ident: str) -> None:
        keep, gone = (a, b) if rank[a] < rank[b] else (b, a)
        parent[gone] = keep
        matched_by[gone] = ident
        for col in tracked:
            if value[col][keep] is None:
                value[col][keep] = value[col][gone]

    for ident, col in zip(identifiers, columns, strict=True):
        series = frame[col]
        shared = series.notna() & series.duplicated(keep=False)
        if not shared.any():
            continue
        positions = np.flatnonzero(shared.to_numpy())
        groups: dict[object, list[int]] = defaultdict(list)
        for pos, key in zip(positions, series.to_numpy()[positions], strict=True):
            groups[key].append(int(pos))
        for members in groups.values():
            members.sort(key=lambda p: rank[p])
            roots: list[int] = []  # clusters met in this group, most recent first
            for p in members:
                rp = find(p)
                roots = [find(r) for r in roots]
                if rp in roots:
                    continue
                target = next((r for r in roots if compatible(r, rp)), None)
                if target is None:
                    roots.append(rp)
                else:
                    union(target, rp, ident)
    survivors = parent.copy()
    while True:  # full path compression, vectorized
        hop = survivors[survivors]
        if (hop == survivors).all():
            break
        survivors = hop
    cluster_values = {c: np.array(value[c], dtype=object)[survivors].tolist() for c in tracked}
    return Clusters(survivor=survivors, matched_by=matched_by, values=cluster_values)


def _root(parent: list[int], x: int) -> int:
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


def _links(keys: list[str]) -> list[tuple[int, int, float]]:
    """Pairs (i, j, score) of sorted distinct keys at least FUZZY_THRESHOLD alike.

    Sorted-neighbourhood blocking: each key is compared with the next NEIGHBOURS keys in sorted
    order, one vectorized `cpdist` call per offset, so the work stays linear in the number of
    keys. The score is token_sort_ratio, computed as `ratio` on token-sorted text prepared once.
    """
    token_sorted = [" ".join(sorted(k.split())) for k in keys]
    found = []
    for offset in range(1, min(NEIGHBOURS, len(keys) - 1) + 1):
        scores = process.cpdist(
            token_sorted[:-offset],
            token_sorted[offset:],
            scorer=fuzz.ratio,
            score_cutoff=FUZZY_THRESHOLD,
            workers=-1,
        )
        found.extend((int(a), int(a) + offset, float(scores[a])) for a in np.flatnonzero(scores))
    return found


def fuzzy_candidates(frame: pd.DataFrame) -> list[dict[str, object]]:
    """Groups of look-alike survivors (`ploomes_id`, `name_key`), whatever their identifiers.

    Names are reduced to a company key (folded, legal-form words removed). Records sharing a key
    are one group (`same_folded_name`, score 100); distinct keys at least 92% alike (`_links`)
    join their groups (`similar_name`, score = the lowest link). Never merged: for a person.
    Returns the clusters as dicts with `members`, `rule` and `score`.
    """
    keys = frame["name_key"].fillna("").map(company_key).to_numpy(dtype=object)
    usable = keys != ""
    ids = frame["ploomes_id"].to_numpy()[usable]
    unique_keys, inverse = np.unique(keys[usable].astype(str), return_inverse=True)  # sorted
    parent = list(range(len(unique_keys)))
    lowest: dict[int, float] = {}
    for i, j, score in _links(unique_keys.tolist()):
        a, b = _root(parent, i), _root(parent, j)
        if a != b:
            parent[b] = a
            lowest[a] = min(lowest.get(a, 100.0), lowest.pop(b, 100.0), score)
        else:
            lowest[a] = min(lowest.get(a, 100.0), score)
    roots = np.array([_root(parent, k) for k in range(len(unique_keys))], dtype=np.int64)
    group_of_row = roots[inverse]
    out: list[dict[str, object]] = []
    rows = pd.DataFrame({"group": group_of_row, "key": inverse, "id": ids})
    for root, members in rows[rows["group"].duplicated(keep=False)].groupby("group", sort=False):
        same = members["key"].nunique() == 1
        out.append(
            {
                "members": sorted(int(x) for x in members["id"]),
                "rule": "same_folded_name" if same else "similar_name",
                "score": 100.0 if same else lowest.get(int(root), 100.0),
            }
        )
    return out
