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

A person's decisions (`ploomes_cx/decisions.py`) come last and first: records decided
`different` never share a cluster, whatever joins them; records decided `same` are joined after
the identifiers, whatever their values (rule `decision`).
"""

from __future__ import annotations

import bisect
import heapq
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from ploomes_cx.identity import IDENTIFIER_COLUMNS, same_in_columns
from ploomes_cx.staging.normalize import company_key

FUZZY_THRESHOLD = 92.0
NEIGHBOURS = 20  # sorted-neighbourhood window: each distinct name is compared with the next 20


@dataclass
class Clusters:
    """Per input row: the survivor's row position and the identifier that joined its cluster."""

    survivor: np.ndarray
    matched_by: list[str | None]
    values: dict[str, np.ndarray]  # identifier column -> cluster value per row (the survivor's)
    unjoined: list[tuple[int, ...]] = field(default_factory=list)  # `same` groups a `different` kept apart


class _Forest:
    """The union-find the clusters grow in: each root keeps its cluster's identifier values."""

    def __init__(
        self,
        frame: pd.DataFrame,
        identifiers: list[str],
        tracked: list[str],
        apart: dict[int, set[int]] | None = None,
    ) -> None:
        n = len(frame)
        # rows decided `different` (local positions): each row's opposites, and per root the
        # decided rows its cluster holds
        self.apart = apart or {}
        self.holds: dict[int, set[int]] = {p: {p} for p in self.apart}
        order = np.lexsort((frame["ploomes_id"].to_numpy(), -frame["changed_at"].to_numpy().astype("int64")))
        self.rank = np.empty(n, dtype=np.int64)
        self.rank[order] = np.arange(n)  # 0 = most recent
        # a plain list: the loops below read it one element at a time, which numpy makes slow
        self.parent: list[int] = list(range(n))
        self.tracked = tracked
        self.value = {c: frame[c].where(frame[c].notna(), None).tolist() for c in tracked}
        self.ordered = [self.value[IDENTIFIER_COLUMNS[i]] for i in identifiers]
        self.matched_by: list[str | None] = [None] * n

    def find(self, x: int) -> int:
        return _root(self.parent, x)

    def compatible(self, a: int, b: int) -> bool:
        """The identity rule on the two clusters' values (each keeps one value per identifier)."""
        return same_in_columns(self.value["document"], self.ordered, a, b) and not self.kept_apart(a, b)

    def kept_apart(self, a: int, b: int) -> bool:
        """Whether the clusters of roots `a` and `b` hold two records decided different."""
        if not self.holds:
            return False
        theirs = self.holds.get(b, set())
        return any(self.apart[x] & theirs for x in self.holds.get(a, ()))

    def union(self, a: int, b: int, ident: str) -> int:
        keep, gone = (a, b) if self.rank[a] < self.rank[b] else (b, a)
        self.parent[gone] = keep
        self.matched_by[gone] = ident
        if gone in self.holds:
            self.holds.setdefault(keep, set()).update(self.holds.pop(gone))
        for col in self.tracked:
            if self.value[col][keep] is None:
                self.value[col][keep] = self.value[col][gone]
        return keep

    def join_group(self, members: list[int], ident: str) -> None:
        """Records sharing one value of `ident`, most recent first: each joins the first cluster
        met in the group that it is compatible with, else starts one. Clusters are looked up by
        document: one with another document can never be compatible, and an accountant's e-mail
        shared by thousands of companies would otherwise be millions of comparisons."""
        slots: list[int] = []  # clusters met in this group, in the order met (their current root)
        position: dict[int, int] = {}  # root -> its slot
        by_document: dict[object, list[int]] = defaultdict(list)  # document -> slots, ascending
        undocumented: list[int] = []  # slots of clusters without a document, ascending
        documents = self.value["document"]
        for p in members:
            rp = self.find(p)
            if rp in position:
                continue
            doc = documents[rp]
            candidates = (
                range(len(slots)) if doc is None else heapq.merge(by_document.get(doc, []), undocumented)
            )
            target = next((i for i in candidates if self.compatible(slots[i], rp)), None)
            if target is None:
                position[rp] = len(slots)
                (undocumented if doc is None else by_document[doc]).append(len(slots))
                slots.append(rp)
                continue
            before = slots[target]
            had_document = documents[before] is not None
            root = self.union(before, rp, ident)
            del position[before]
            position[root], slots[target] = target, root
            if not had_document and documents[root] is not None:  # the cluster gained a document
                undocumented.remove(target)
                bisect.insort(by_document[documents[root]], target)


def cluster_by_identifiers(
    frame: pd.DataFrame,
    identifiers: list[str],
    same: list[tuple[int, ...]] | None = None,
    apart: set[tuple[int, int]] | None = None,
) -> Clusters:
    """`frame` needs `ploomes_id`, `changed_at` and the normalized identifier columns; `same` and
    `apart` are a person's decisions by Ploomes Id (those not in `frame` are ignored)."""
    columns = [IDENTIFIER_COLUMNS[i] for i in identifiers]
    tracked = list(dict.fromkeys(["document", *columns]))
    shared = {c: (frame[c].notna() & frame[c].duplicated(keep=False)).to_numpy() for c in columns}
    ids = frame["ploomes_id"].to_numpy()
    decided = np.isin(
        ids, [i for group in same or [] for i in group] + [i for pair in apart or () for i in pair]
    )
    # Only a row sharing a value with another, or named by a decision, can join a cluster: the
    # forest holds those alone (a tenth of a million contacts), every other row is its own survivor.
    rows = np.flatnonzero(np.logical_or.reduce([*shared.values(), decided]))
    sharing = frame[["ploomes_id", "changed_at", *tracked]].iloc[rows]
    # Ploomes Id -> forest position, for the decided records only (none without a decisions file)
    local_of = (
        {int(i): p for p, i in enumerate(ids[rows].tolist()) if decided[rows[p]]} if decided.any() else {}
    )
    forest = _Forest(sharing, identifiers, tracked, _apart_positions(apart or set(), local_of))
    for ident, col in zip(identifiers, columns, strict=True):
        positions = np.flatnonzero(shared[col][rows])
        if not len(positions):
            continue
        values = sharing[col].to_numpy()
        # groups in the order of their first row, members most recent first
        groups: dict[object, list[int]] = {key: [] for key in values[positions].tolist()}
        positions = positions[np.argsort(forest.rank[positions], kind="stable")]
        for pos, key in zip(positions.tolist(), values[positions].tolist(), strict=True):
            groups[key].append(pos)
        for members in groups.values():
            forest.join_group(members, ident)
    unjoined = _join_decided(forest, same or [], local_of)
    local = np.array(forest.parent, dtype=np.int64)  # an empty list would make floats
    while True:  # full path compression, vectorized
        hop = local[local]
        if (hop == local).all():
            break
        local = hop
    survivors = np.arange(len(frame))
    survivors[rows] = rows[local]
    matched_by: list[str | None] = [None] * len(frame)
    for row, ident in zip(rows.tolist(), forest.matched_by, strict=True):
        matched_by[row] = ident
    cluster_values = {}
    for c in tracked:  # each row's own value, the cluster's where it shares one
        values = frame[c].to_numpy(dtype=object, copy=True)
        values[pd.isna(values)] = None
        values[rows] = _objects(forest.value[c])[local]
        cluster_values[c] = values
    return Clusters(survivor=survivors, matched_by=matched_by, values=cluster_values, unjoined=unjoined)


def _apart_positions(apart: set[tuple[int, int]], local_of: dict[int, int]) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for a, b in apart:
        if a in local_of and b in local_of:
            out.setdefault(local_of[a], set()).add(local_of[b])
            out.setdefault(local_of[b], set()).add(local_of[a])
    return out


def _join_decided(
    forest: _Forest, same: list[tuple[int, ...]], local_of: dict[int, int]
) -> list[tuple[int, ...]]:
    """Join each `same` group's records present here; a group a `different` decision keeps apart
    (through the clusters its records are in) is returned, not joined."""
    unjoined = []
    for group in same:
        present = [local_of[i] for i in group if i in local_of]
        for p in present[1:]:
            a, b = forest.find(present[0]), forest.find(p)
            if a == b:
                continue
            if forest.kept_apart(a, b):
                unjoined.append(group)
                break
            forest.union(a, b, "decision")
    return unjoined


def _objects(values: list[object]) -> np.ndarray:
    """A 1-D object array of `values` as they are (np.array would nest a list of tuples)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


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
    prepared = token_sorted(keys)
    found = []
    for offset in range(1, min(NEIGHBOURS, len(keys) - 1) + 1):
        scores = pair_scores(prepared[:-offset], prepared[offset:])
        found.extend((int(a), int(a) + offset, float(scores[a])) for a in np.flatnonzero(scores))
    return found


def token_sorted(keys: list[str]) -> list[str]:
    """Each key's words in sorted order: `ratio` on these is token_sort_ratio, prepared once."""
    return [" ".join(sorted(k.split())) for k in keys]


def pair_scores(left: list[str], right: list[str]) -> np.ndarray:
    """The similarity of each pair (left[i], right[i]) of token-sorted keys, 0 below the threshold."""
    return process.cpdist(left, right, scorer=fuzz.ratio, score_cutoff=FUZZY_THRESHOLD, workers=-1)


def fuzzy_candidates(frame: pd.DataFrame) -> list[dict[str, object]]:
    """Groups of look-alike survivors (`ploomes_id`, `name_key`), whatever their identifiers.

    Names are reduced to a company key (folded, legal-form words removed). Records sharing a key
    are one group (`same_folded_name`, score 100); distinct keys at least 92% alike (`_links`)
    join their groups (`similar_name`, score = the lowest link). Never merged: for a person.
    Returns the clusters as dicts with `members`, `rule` and `score`.
    """
    # in Python, once per distinct name: the suffix regexp per row, and numpy's sort of
    # fixed-width copies of the keys, took most of the time on a quarter million clients
    names = frame["name_key"].fillna("").tolist()
    company = {name: company_key(name) for name in dict.fromkeys(names)}
    keys = [company[name] for name in names]
    usable = np.fromiter((k != "" for k in keys), dtype=bool, count=len(keys))
    ids = frame["ploomes_id"].to_numpy()[usable]
    unique_keys = sorted({k for k in keys if k})
    position = {k: i for i, k in enumerate(unique_keys)}
    inverse = np.fromiter((position[k] for k in keys if k), dtype=np.int64, count=int(usable.sum()))
    parent = list(range(len(unique_keys)))
    lowest: dict[int, float] = {}
    for i, j, score in _links(unique_keys):
        a, b = _root(parent, i), _root(parent, j)
        if a != b:
            parent[b] = a
            lowest[a] = min(lowest.get(a, 100.0), lowest.pop(b, 100.0), score)
        else:
            lowest[a] = min(lowest.get(a, 100.0), score)
    roots = np.array([_root(parent, k) for k in range(len(unique_keys))], dtype=np.int64)
    group_of_row = roots[inverse]
    members, keys_in = groups_of(group_of_row, ids, inverse)
    return [
        {
            "members": ids_,
            "rule": "same_folded_name" if len(keys_in[root]) == 1 else "similar_name",
            "score": 100.0 if len(keys_in[root]) == 1 else lowest.get(root, 100.0),
        }
        for root, ids_ in members.items()
    ]


def groups_of(
    groups: object, members: object, labels: object
) -> tuple[dict[int, list[int]], dict[int, set[object]]]:
    """Groups of two or more rows: each group's members in ascending order, and the set of its
    rows' labels (nulls left out), in ascending group order.

    One loop over plain lists of the grouped rows only: pandas' grouped aggregations cost a
    Python call and a frame slice per group, and a million records make tens of thousands."""
    rows = pd.DataFrame({"group": groups, "member": members, "label": labels})
    rows = rows[rows["group"].duplicated(keep=False)].sort_values(["group", "member"])
    found: dict[int, list[int]] = {}
    labelled: dict[int, set[object]] = {}
    for group, member, label in zip(
        rows["group"].tolist(), rows["member"].tolist(), rows["label"].tolist(), strict=True
    ):
        found.setdefault(group, []).append(member)
        if label is not None and label == label:  # NaN is no label
            labelled.setdefault(group, set()).add(label)
    return found, labelled


# scores of the candidates found by a shared detail rather than by name: how likely the same client
RELATED = {
    "cnpj_branch": 0.80,  # same company root, another branch: head office and branch, rarely one client
    "same_phone": 0.85,  # one switchboard for two records: a re-entry, or a group sharing a reception
}


def related_candidates(frame: pd.DataFrame) -> list[dict[str, object]]:
    """Groups of survivors sharing a CNPJ root with different branches (`cnpj_branch`), or a
    phone (`same_phone`). Scores are fixed per reason (`RELATED`, 0-100 like the name scores);
    reported for a person, never merged."""
    out: list[dict[str, object]] = []
    ids = frame["ploomes_id"].to_numpy()
    cnpj = frame["document"].where(frame["document_type"] == "cnpj") if "document_type" in frame else None
    if cnpj is not None and cnpj.notna().any():
        root = cnpj.str[:8].where(cnpj.notna())
        branches = cnpj.groupby(root).transform("nunique")
        keep = (branches > 1).to_numpy() & root.notna().to_numpy()
        out += _grouped(root.to_numpy()[keep], ids[keep], "cnpj_branch")
    if "phone" in frame:
        phone = frame["phone"]
        keep = (phone.notna() & phone.duplicated(keep=False)).to_numpy()
        out += _grouped(phone.to_numpy()[keep], ids[keep], "same_phone")
    return out


def _grouped(keys: np.ndarray, ids: np.ndarray, rule: str) -> list[dict[str, object]]:
    members, _ = groups_of(keys, ids, keys)
    return [{"members": m, "rule": rule, "score": RELATED[rule] * 100} for m in members.values()]
