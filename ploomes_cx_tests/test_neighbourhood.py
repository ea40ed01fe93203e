"""Deduplication is local to a change's neighbourhood (issue 30, point 1): on random accounts,
random changes (new values, new records, deleted records) and random decisions, every record
outside `neighbourhood` keeps the cluster it had, and clustering the neighbourhood alone gives the
records inside it the clusters a run over the whole account gives."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from ploomes_cx.staging.dedupe import _links, cluster_by_identifiers
from ploomes_cx.staging.neighbourhood import (
    identity_rows,
    links_touching,
    name_window,
    neighbourhood,
    neighbourhood_sql,
)

T = dt.datetime(2026, 11, 2, 12)
COLUMNS = ("document", "external_code", "email")
IDENTIFIERS = ("cnpj_cpf", "external_code", "email")
# few values, so records share them often; documents of both kinds, as staging gives them
VALUES = {
    "document": st.sampled_from([None, "11222333000181", "45723174000110", "52998224725"]),
    "external_code": st.sampled_from([None, "A1", "B2", "C3"]),
    "email": st.sampled_from([None, "a@x.com.br", "b@x.com.br", "fiscal@contab.com.br"]),
}
RECORD = st.fixed_dictionaries({"hours": st.integers(0, 6), **VALUES})


def _frame(records: dict[int, dict]) -> pd.DataFrame:
    rows = [
        {"ploomes_id": pid, "changed_at": T + dt.timedelta(hours=r["hours"]), **{c: r[c] for c in COLUMNS}}
        for pid, r in sorted(records.items())
    ]
    return pd.DataFrame(rows, columns=["ploomes_id", "changed_at", *COLUMNS])


def _clusters(frame: pd.DataFrame, identifiers: list[str], same: list, apart: set) -> dict[int, tuple]:
    """Per Ploomes Id: its survivor's Id, the identifier that joined it, its cluster's values."""
    result = cluster_by_identifiers(frame.reset_index(drop=True), identifiers, same, apart)
    ids = frame["ploomes_id"].tolist()
    return {
        pid: (
            ids[result.survivor[i]],
            result.matched_by[i],
            tuple(result.values[c][i] for c in result.values),
        )
        for i, pid in enumerate(ids)
    }


@st.composite
def stories(draw: st.DrawFn) -> tuple:
    before = draw(st.dictionaries(st.integers(1, 14), RECORD, max_size=14))
    ids = st.integers(1, 18)
    changed = draw(st.dictionaries(ids, RECORD, max_size=4))  # new versions and new records
    deleted = draw(st.sets(ids, max_size=2))
    identifiers = draw(st.permutations(IDENTIFIERS).flatmap(lambda p: st.integers(1, 3).map(lambda n: p[:n])))
    same = draw(st.lists(st.tuples(ids, ids).filter(lambda t: t[0] != t[1]), max_size=3))
    apart = draw(st.sets(st.tuples(ids, ids).filter(lambda t: t[0] < t[1]), max_size=3))
    return before, changed, deleted, list(identifiers), same, apart


@settings(max_examples=150, deadline=None)
@given(stories())
def test_a_change_reaches_only_its_neighbourhood_and_the_neighbourhood_alone_clusters_the_same(story) -> None:
    before, changed, deleted, identifiers, same, apart = story
    after = {pid: r for pid, r in (before | changed).items() if pid not in deleted}
    old, new = _frame(before), _frame(after)
    touched = set(changed) | deleted
    # the changed records' versions before the change are part of the graph: what they left
    versions = [f for f in (old[old["ploomes_id"].isin(touched)], new) if len(f)]
    reach = neighbourhood(pd.concat(versions) if versions else new, identifiers, touched, same)
    assert touched <= reach
    was, now = _clusters(old, identifiers, same, apart), _clusters(new, identifiers, same, apart)
    for pid in set(after) - reach:
        assert now[pid] == was[pid], pid
    inside = new[new["ploomes_id"].isin(reach)]
    alone = _clusters(inside, identifiers, same, apart)
    assert alone == {pid: now[pid] for pid in inside["ploomes_id"]}


def test_a_record_joined_by_a_decision_alone_is_in_the_neighbourhood() -> None:
    frame = _frame({1: {"hours": 0, "document": None, "external_code": "A1", "email": None},
                    2: {"hours": 1, "document": None, "external_code": "A1", "email": None},
                    3: {"hours": 2, "document": None, "external_code": None, "email": "b@x.com.br"},
                    4: {"hours": 3, "document": None, "external_code": None, "email": None}})  # fmt: skip
    assert neighbourhood(frame, ["external_code"], [1]) == {1, 2}
    assert neighbourhood(frame, ["external_code", "email"], [1], same=[(2, 3)]) == {1, 2, 3}
    assert neighbourhood(frame, ["external_code"], [4]) == {4}


WORDS = ["alfa", "alfas", "beta", "betas", "gama", "gamma", "delta", "deltas", "comercio", "comercial"]
# names of a few words (links between neighbours), or one long name with a two-letter tail: every
# two of those are alike, so links reach the full 20 places and the window's edges are tried
KEYS = st.one_of(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join),
    st.text("abcdefgh", min_size=2, max_size=2).map(lambda tail: f"distribuidora comercial z{tail}"),
)


def _all_links(keys: set[str]) -> set[tuple[str, str, float]]:
    ordered = sorted(keys)
    return {(ordered[i], ordered[j], score) for i, j, score in _links(ordered)}


@settings(max_examples=100, deadline=None)
@given(st.sets(KEYS, min_size=25, max_size=80), st.sets(KEYS, max_size=6), st.sets(KEYS, max_size=6))
def test_fuzzy_links_change_only_around_the_keys_added_or_removed(before, added, removed) -> None:
    after = (before | added) - removed
    window = name_window(before, after)
    kept = {link for link in _all_links(before) if link[0] not in window and link[1] not in window}
    assert kept | set(links_touching(sorted(after), window)) == _all_links(after)


@settings(max_examples=60, deadline=None)
@given(stories(), st.sets(st.integers(1, 18), max_size=4))
def test_the_sql_neighbourhood_over_an_identity_index_is_the_same_set(story, seeds) -> None:
    before, changed, _, identifiers, same, _ = story
    frame = _frame(before | changed)
    seeds = seeds | {group[0] for group in same[:1]}  # a decided record among the seeds, when any
    with duckdb.connect() as con:
        index = identity_rows(frame, identifiers, same)  # noqa: F841 (read by the query below)
        con.execute("create table idx as select * from index")
        assert neighbourhood_sql(con, "idx", seeds) == neighbourhood(frame, identifiers, seeds, same)
