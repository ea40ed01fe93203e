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

import pandas as pd

from ploomes_cx.identity import IDENTIFIER_COLUMNS


def neighbourhood(
    frame: pd.DataFrame,
    identifiers: list[str],
    seeds: Iterable[int],
    same: list[tuple[int, ...]] | None = None,
) -> set[int]:
    """The Ploomes Ids connected to `seeds` in `frame` (`ploomes_id` and the identifier columns).

    `frame` may hold several rows of one Id: pass a changed record's version before the change
    beside its version after, and the neighbourhood covers what it left as well as what it joins.
    Two Ids are connected when a row of each has the same value of one of `identifiers`, or when
    a `same` decision names both.
    """
    columns = [IDENTIFIER_COLUMNS[i] for i in identifiers]
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
        linked += [other for group in decided.get(pid, ()) for other in group if other in known]
        for other in linked:
            if other not in found:
                found.add(other)
                todo.append(other)
    return found
