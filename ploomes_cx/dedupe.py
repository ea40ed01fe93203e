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
MAX_BLOCK = 400  # larger blocks are reported as skipped instead of compared pairwise


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
    survivors = np.array([find(i) for i in range(n)], dtype=np.int64)
    cluster_values = {c: [value[c][s] for s in survivors] for c in tracked}
    return Clusters(survivor=survivors, matched_by=matched_by, values=cluster_values)


def fuzzy_candidates(frame: pd.DataFrame) -> tuple[list[dict[str, object]], int]:
    """Look-alike records among survivors (`ploomes_id`, `name_key`), whatever their identifiers.

    Blocked on the first two words of the company key so the work stays near-linear; a block
    bigger than MAX_BLOCK is counted and skipped. Returns (candidate pairs, skipped blocks).
    """
    keys = frame["name_key"].fillna("").map(company_key)
    rows = frame.assign(_key=keys)[keys != ""]
    out: list[dict[str, object]] = []
    skipped = 0
    block_of = rows["_key"].str.split().str[:2].str.join(" ")
    for _, block in rows.groupby(block_of, sort=False):
        if len(block) < 2:
            continue
        if len(block) > MAX_BLOCK:
            skipped += 1
            continue
        names = block["_key"].tolist()
        scores = process.cdist(names, names, scorer=fuzz.token_sort_ratio, score_cutoff=FUZZY_THRESHOLD)
        ids = block["ploomes_id"].tolist()
        for i, j in zip(*np.nonzero(np.triu(scores, k=1)), strict=True):
            out.append(
                {
                    "a": ids[i],
                    "b": ids[j],
                    "score": float(scores[i, j]),
                    "rule": "same_folded_name" if names[i] == names[j] else "similar_name",
                }
            )
    return out, skipped
