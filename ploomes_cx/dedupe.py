"""Deduplication: which records are the same CustomerX record, and which only look alike.

Identifier matching follows the contract (mapping-and-cli.md, `identifiers`): for two records the
first identifier in the mapping's list that both have decides, and two different valid CPF/CNPJ
are never the same record, whatever the order. Clusters are grown greedily with a union-find:
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

from ploomes_cx.normalize import company_key

IDENTIFIER_COLUMNS = {"cnpj_cpf": "document", "external_code": "external_code", "email": "email"}
FUZZY_THRESHOLD = 92.0
CHUNK, OVERLAP = 300, 60  # sorted-neighbourhood comparison: chunk size and overlap between chunks


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

    def compatible(a: int, b: int, level: int) -> bool:
        da, db = value["document"][a], value["document"][b]
        if da is not None and db is not None and da != db:
            return False
        for col in columns[:level]:
            va, vb = value[col][a], value[col][b]
            if va is not None and vb is not None and va != vb:
                return False
        return True

    def union(a: int, b: int, ident: str) -> None:
        keep, gone = (a, b) if rank[a] < rank[b] else (b, a)
        parent[gone] = keep
        matched_by[gone] = ident
        for col in tracked:
            if value[col][keep] is None:
                value[col][keep] = value[col][gone]

    for level, (ident, col) in enumerate(zip(identifiers, columns, strict=True)):
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
                target = next((r for r in roots if compatible(r, rp, level)), None)
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


def _links(names: list[str]) -> list[tuple[int, int, float]]:
    """Pairs (i, j, score) of names at least FUZZY_THRESHOLD alike, among sorted neighbours.

    Names are sorted and compared in overlapping chunks (sorted-neighbourhood blocking): any two
    names fewer than OVERLAP places apart in sorted order share a chunk, so typos late in a name
    are found while the work stays linear in the number of names.
    """
    order = sorted(range(len(names)), key=names.__getitem__)
    found: dict[tuple[int, int], float] = {}
    start = 0
    while True:
        chunk = order[start : start + CHUNK]
        scores = process.cdist(
            [names[k] for k in chunk],
            [names[k] for k in chunk],
            scorer=fuzz.token_sort_ratio,
            score_cutoff=FUZZY_THRESHOLD,
            workers=-1,
        )
        for a, b in np.argwhere(np.triu(scores, k=1) > 0):
            i, j = sorted((chunk[a], chunk[b]))
            found[(i, j)] = float(scores[a, b])
        if start + CHUNK >= len(order):
            return [(i, j, score) for (i, j), score in found.items()]
        start += CHUNK - OVERLAP


def fuzzy_candidates(frame: pd.DataFrame) -> list[dict[str, object]]:
    """Groups of look-alike survivors (`ploomes_id`, `name_key`), whatever their identifiers.

    Blocked on the first word of the company key (legal-form words removed), then compared by
    sorted neighbourhood (`_links`), so the work stays near-linear. Linked names form connected
    groups; each is one candidate cluster: `rule` is `same_folded_name` when all its names fold
    to one key, else `similar_name`, and `score` the lowest pair score that linked it.
    Returns the clusters as dicts with `members`, `rule` and `score`.
    """
    keys = frame["name_key"].fillna("").map(company_key)
    usable = (keys != "").to_numpy()
    ids_all = frame["ploomes_id"].to_numpy()[usable]
    key_values = keys.to_numpy()[usable]
    out: list[dict[str, object]] = []
    block_of = pd.Series(key_values).str.split().str[0]
    for _, positions in pd.Series(range(len(key_values)), index=block_of.to_numpy()).groupby(
        level=0, sort=False
    ):
        if len(positions) < 2:
            continue
        pos = positions.to_numpy()
        names = key_values[pos].tolist()
        parent = list(range(len(names)))
        lowest: dict[int, float] = {}
        for i, j, score in _links(names):
            a, b = _root(parent, i), _root(parent, j)
            if a != b:
                parent[b] = a
                lowest[a] = min(lowest.get(a, 100.0), lowest.pop(b, 100.0), score)
            else:
                lowest[a] = min(lowest.get(a, 100.0), score)
        groups: dict[int, list[int]] = defaultdict(list)
        for k in range(len(names)):
            groups[_root(parent, k)].append(k)
        for r, members in groups.items():
            if len(members) < 2:
                continue
            same = len({names[k] for k in members}) == 1
            out.append(
                {
                    "members": sorted(int(ids_all[pos[k]]) for k in members),
                    "rule": "same_folded_name" if same else "similar_name",
                    "score": 100.0 if same else lowest.get(r, 100.0),
                }
            )
    return out
