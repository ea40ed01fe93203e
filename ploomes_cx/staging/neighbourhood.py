"""Which records a change can reach through deduplication: the ground incremental staging stands on
(issue 30, point 1).

`dedupe.cluster_by_identifiers` only ever joins records that share a value of one of the
mapping's identifiers, or that a person's `same` decision names together; its order of work
(identifiers by priority, groups by their first row, members most recent first) is relative
order, which a subset of the records keeps. So the clusters of a connected set of records (linked
by a shared identifier value or a `same` decision) depend on that set alone, and a change to some
records can only alter the clusters of the records connected to them, by their values before the
change or after it. `neighbourhood` finds those records; `test_neighbourhood.py` checks, on random
accounts and random changes, that every record outside it keeps its cluster, and that clustering
the neighbourhood alone gives each record inside it the cluster a run over every record gives.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import duckdb
import pandas as pd

from ploomes_cx.identity import IDENTIFIER_COLUMNS
from ploomes_cx.staging.dedupe import NEIGHBOURS, pair_scores, token_sorted


def neighbourhood(
    frame: pd.DataFrame,
    identifiers: list[str],
    seeds: Iterable[int],
    same: list[tuple[int, ...]] | None = None,
    links: Iterable[str] = (),
) -> set[int]:
    """The Ploomes Ids connected to `seeds` in `frame` (`ploomes_id` and the identifier columns).

    `frame` may hold several rows of one Id: pass a changed record's version before the change
    beside its version after, and the neighbourhood covers what it left as well as what it joins.
    Two Ids are connected when a row of each has the same value of one of `identifiers` (or of one
    of the `links` columns: any other rule that groups records, such as a contact's e-mail or its
    company), or when a `same` decision names both.
    """
    columns = list(dict.fromkeys([*(IDENTIFIER_COLUMNS[i] for i in identifiers), *links]))
    ids = frame["ploomes_id"].astype("int64").tolist()
    holders: dict[tuple[str, object], list[int]] = defaultdict(list)  # (column, value) -> Ids
    values_of: dict[int, list[tuple[str, object]]] = defaultdict(list)  # Id -> its (column, value)s
    for column in columns:
        present = frame[column].notna().to_numpy()
        for pid, value in zip(
            frame["ploomes_id"][present].astype("int64").tolist(),
            frame[column][present].tolist(),
            strict=True,
        ):
            holders[(column, value)].append(pid)
            values_of[pid].append((column, value))
    decided: dict[int, list[tuple[int, ...]]] = defaultdict(list)
    for group in same or []:
        for pid in group:
            decided[pid].append(group)
    known = set(ids)
    found = {int(s) for s in seeds}
    todo = list(found)
    while todo:
        pid = todo.pop()
        linked = [other for key in values_of.get(pid, ()) for other in holders[key]]
        if pid in known:  # a decision joins records the frame holds, as clustering does
            linked += [other for group in decided.get(pid, ()) for other in group if other in known]
        for other in linked:
            if other not in found:
                found.add(other)
                todo.append(other)
    return found


def name_window(before: Iterable[str], after: Iterable[str]) -> set[str]:
    """The company keys whose fuzzy-name links (`dedupe._links`) a change can alter: the keys within
    `NEIGHBOURS` places of a key added or removed, in the sorted distinct keys before the change
    (for a removed key) and after it (for an added one).

    `_links` compares each key with the next `NEIGHBOURS` keys in sorted order, so a key added or
    removed shifts only the comparisons of the keys that close to it; every other pair is compared
    (or not) exactly as before."""
    old, new = sorted(set(before)), sorted(set(after))
    removed, added = set(old) - set(new), set(new) - set(old)
    window: set[str] = set()
    for keys, changed in ((old, removed), (new, added)):
        for i, key in enumerate(keys):
            if key in changed:
                window.update(keys[max(0, i - NEIGHBOURS) : i + NEIGHBOURS + 1])
    return window


def links_touching(keys: list[str], window: set[str]) -> list[tuple[str, str, float]]:
    """`dedupe._links` of the sorted distinct `keys`, only the pairs with a key in `window`, as
    (key, key, score): what replaces a stored link list's pairs touching the window. Scored by the
    same vectorized call, so the scores are the same numbers."""
    pairs = sorted(
        {
            (min(i, j), max(i, j))
            for i, key in enumerate(keys)
            if key in window
            for j in range(max(0, i - NEIGHBOURS), min(len(keys), i + NEIGHBOURS + 1))
            if j != i
        }
    )
    if not pairs:
        return []
    needed = sorted({i for pair in pairs for i in pair})  # the window's keys and neighbours, not all
    prepared = dict(zip(needed, token_sorted([keys[i] for i in needed]), strict=True))
    scores = pair_scores([prepared[a] for a, _ in pairs], [prepared[b] for _, b in pairs])
    return [(keys[a], keys[b], float(scores[n])) for n, (a, b) in enumerate(pairs) if scores[n]]


def identity_rows(
    frame: pd.DataFrame, identifiers: list[str], same: list[tuple[int, ...]] | None = None
) -> pd.DataFrame:
    """`frame`'s identifier values in long form (`ploomes_id`, `identifier`, `value`), one row per
    present value, plus one per record a `same` decision names (identifier `decision`, the
    decision's number as its value): the shape an identity index is kept in, where one join finds
    every record linked to another."""
    ids = frame["ploomes_id"].astype("int64")
    parts = []
    for ident in identifiers:
        values = frame[IDENTIFIER_COLUMNS[ident]]
        present = values.notna()
        parts.append(
            pd.DataFrame(
                {"ploomes_id": ids[present], "identifier": ident, "value": values[present].astype(str)}
            )
        )
    held = set(ids.tolist())
    decided = [(i, str(n)) for n, group in enumerate(same or []) for i in group if i in held]
    parts.append(
        pd.DataFrame(
            {
                "ploomes_id": [i for i, _ in decided],
                "identifier": "decision",
                "value": [v for _, v in decided],
            }
        )
    )
    rows = pd.concat([p for p in parts if len(p)] or parts[-1:], ignore_index=True)
    return rows.astype({"ploomes_id": "int64", "identifier": str, "value": str})


def neighbourhood_sql(con: duckdb.DuckDBPyConnection, index: str, seeds: Iterable[int]) -> set[int]:
    """`neighbourhood` over an identity index (a table or subquery with `identity_rows`' columns) in
    DuckDB: one recursive query, which reads only the reached records' rows, so a million-record
    account is joined where it is stored instead of being read into Python."""
    con.execute(
        "create or replace temp table _seeds as select unnest(?::bigint[]) as ploomes_id",
        [[int(s) for s in seeds]],
    )
    rows = con.execute(
        f"""with recursive reach(ploomes_id) as (
                select ploomes_id from _seeds
                union
                select other.ploomes_id
                from reach
                join {index} mine on mine.ploomes_id = reach.ploomes_id
                join {index} other on other.identifier = mine.identifier and other.value = mine.value
            )
            select ploomes_id from reach"""
    ).fetchall()
    return {int(r[0]) for r in rows}
