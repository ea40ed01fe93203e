"""Identifier clustering and fuzzy candidates on hand-made edge cases."""

from __future__ import annotations

import datetime as dt
import itertools

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from ploomes_cx.staging.dedupe import cluster_by_identifiers, fuzzy_candidates, groups_of, related_candidates

T = dt.datetime(2026, 11, 2, 12)


def frame(*rows: tuple) -> pd.DataFrame:
    """rows: (id, hours after T, document, external_code, email, name_key)"""
    return pd.DataFrame(
        [
            {
                "ploomes_id": r[0],
                "changed_at": T + dt.timedelta(hours=r[1]),
                "document": r[2],
                "external_code": r[3],
                "email": r[4],
                "name_key": r[5] if len(r) > 5 else None,
            }
            for r in rows
        ]
    )


def survivors(f: pd.DataFrame, identifiers: list[str]) -> dict[int, int]:
    c = cluster_by_identifiers(f, identifiers)
    ids = f["ploomes_id"].tolist()
    return {ids[i]: ids[s] for i, s in enumerate(c.survivor)}


ALL = ["cnpj_cpf", "external_code", "email"]


def test_same_document_merges_and_the_latest_change_survives():
    f = frame((1, 0, "11222333000181", None, "a@x.com"), (2, 5, "11222333000181", None, "b@x.com"))
    assert survivors(f, ALL) == {1: 2, 2: 2}
    c = cluster_by_identifiers(f, ALL)
    assert c.matched_by == ["cnpj_cpf", None]


def test_an_empty_frame_has_no_clusters():  # a window with no records
    empty = frame((1, 0, None, None, None)).iloc[0:0].astype({"ploomes_id": "int64"})
    c = cluster_by_identifiers(empty, ALL)
    assert len(c.survivor) == 0 and c.survivor.dtype.kind == "i"


def test_two_valid_documents_never_merge_whatever_the_order():
    f = frame(
        (1, 0, "11222333000181", None, "shared@contab.com"),
        (2, 1, "99888777000100", None, "shared@contab.com"),
    )
    for order in (ALL, ["email", "cnpj_cpf"], ["email"]):
        assert survivors(f, order) == {1: 1, 2: 2}


def test_the_first_identifier_both_have_decides():
    f = frame(
        (1, 0, None, "ERP-1", "x@y.com"), (2, 1, None, "ERP-2", "x@y.com"), (3, 2, None, None, "x@y.com")
    )
    result = survivors(f, ["external_code", "email"])
    assert result[1] != result[2]  # both have a code and the codes differ: not the same record
    assert result[3] == 3 and result[2] == 3  # record 3 has no code: e-mail decides, latest change first
    # with e-mail first, e-mail decides for every pair
    assert set(survivors(f, ["email", "external_code"]).values()) == {3}


def test_a_chain_through_a_shared_email_cannot_join_two_documents():
    f = frame(
        (1, 0, "11222333000181", None, "e@x.com"),
        (2, 1, None, None, "e@x.com"),
        (3, 2, "99888777000100", None, "e@x.com"),
    )
    result = survivors(f, ALL)
    assert result[2] == result[3] == 3  # the most recent compatible cluster wins
    assert result[1] == 1


def test_survivor_gets_the_cluster_identifiers_it_lacks():
    f = frame((1, 0, "11222333000181", "ERP-9", "a@x.com"), (2, 3, None, "ERP-9", None))
    c = cluster_by_identifiers(f, ALL)
    assert c.survivor.tolist() == [1, 1]
    assert c.values["document"].tolist() == ["11222333000181"] * 2
    assert c.values["email"].tolist() == ["a@x.com"] * 2


def test_equal_change_dates_break_ties_on_the_older_id():
    f = frame((7, 0, None, None, "a@x.com"), (3, 0, None, None, "a@x.com"))
    assert survivors(f, ALL) == {7: 3, 3: 3}


def test_fuzzy_candidates_flag_lookalikes_without_merging():
    f = frame(
        (1, 0, "11222333000181", None, None, "padaria sao joao ltda"),
        (2, 0, "99888777000100", None, None, "padaria sao joao me"),
        (3, 0, None, None, None, "padaria sao joao centro"),
        (4, 0, None, None, None, "metalurgica ceara"),
        (5, 0, None, None, None, "metalurgica ceara ltda"),
        (6, 0, None, None, None, "metalurgica ceara norte"),
    )
    groups = fuzzy_candidates(f)
    found = {tuple(g["members"]): g for g in groups}
    assert found[(1, 2)]["rule"] == "same_folded_name" and found[(1, 2)]["score"] == 100
    assert found[(4, 5)]["rule"] == "same_folded_name"
    assert (1, 2, 3) not in found  # "centro" makes a different company name
    assert survivors(f, ALL) == {i: i for i in range(1, 7)}


def test_near_identical_names_are_linked_with_their_score():
    f = frame(
        (1, 0, None, None, None, "comercio parana alves"),
        (2, 0, None, None, None, "comercio parana alvez"),
        (3, 0, None, None, None, "comercio parana silva"),
    )
    (group,) = fuzzy_candidates(f)
    assert group["members"] == [1, 2] and group["rule"] == "similar_name" and 92 <= group["score"] < 100


def _reference(f: pd.DataFrame, identifiers: list[str]) -> dict[int, int]:
    """The clustering rule written plainly (every cluster met in a group is compared), as the
    oracle for the indexed one: most recent record first, each record joins the first compatible
    cluster met among the records sharing its value."""
    from ploomes_cx.identity import IDENTIFIER_COLUMNS, same_record

    rows = f.sort_values(["changed_at", "ploomes_id"], ascending=[False, True])["ploomes_id"].tolist()
    rank = {pid: i for i, pid in enumerate(rows)}
    records = f.set_index("ploomes_id")
    parent = {pid: pid for pid in records.index}
    cols = list(dict.fromkeys(["document", *[IDENTIFIER_COLUMNS[i] for i in identifiers]]))
    value = {
        pid: {c: (None if pd.isna(records.at[pid, c]) else records.at[pid, c]) for c in cols}
        for pid in parent
    }

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for ident in identifiers:
        col = IDENTIFIER_COLUMNS[ident]
        groups: dict[object, list[int]] = {}
        for pid in records.index:
            v = records.at[pid, col]
            if not pd.isna(v):
                groups.setdefault(v, []).append(pid)
        for members in groups.values():
            roots: list[int] = []
            for pid in sorted(members, key=rank.get):
                rp = find(pid)
                roots = [find(r) for r in roots]
                if rp in roots:
                    continue
                target = next((r for r in roots if same_record(value[r], value[rp], identifiers)), None)
                if target is None:
                    roots.append(rp)
                    continue
                keep, gone = (target, rp) if rank[target] < rank[rp] else (rp, target)
                parent[gone] = keep
                for c in cols:
                    value[keep][c] = value[keep][c] if value[keep][c] is not None else value[gone][c]
    return {pid: find(pid) for pid in records.index}


SMALL = st.sampled_from([None, "a", "b", "c"])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), SMALL, SMALL, SMALL), min_size=1, max_size=25),
    st.sampled_from([*itertools.permutations(ALL), ["email"], ["external_code"], ["email", "cnpj_cpf"]]),
)
def test_indexed_clustering_matches_the_plain_rule(rows: list[tuple], identifiers: list[str]) -> None:
    """Shared e-mails among records with and without documents, clusters gaining a document
    when they merge: the lookup by document never changes who survives."""
    f = frame(*[(i + 1, hours, doc, code, email) for i, (hours, doc, code, email) in enumerate(rows)])
    assert survivors(f, list(identifiers)) == _reference(f, list(identifiers))


def test_a_cluster_that_gains_a_document_in_a_shared_email_group_is_found_by_it() -> None:
    """Matching by e-mail only: the newest record (no document) takes in one with document D; a
    third with D sharing the e-mail joins them, as the plain rule says."""
    f = frame(
        (1, 3, None, None, "x@a.com"),
        (2, 2, "52998224725", None, "x@a.com"),
        (3, 1, "52998224725", None, "x@a.com"),
    )
    assert survivors(f, ["email"]) == _reference(f, ["email"]) == {1: 1, 2: 1, 3: 1}


def test_groups_of_lists_groups_of_two_or_more_with_their_labels() -> None:
    members, labels = groups_of(
        [7, 3, 7, 5, 3, 7], [30, 12, 10, 50, 11, 20], ["b", None, float("nan"), "x", "a", "b"]
    )
    assert members == {3: [11, 12], 7: [10, 20, 30]}  # group 5 has one row
    assert labels == {3: {"a"}, 7: {"b"}}
    assert list(members) == [3, 7]


def _decided(
    f: pd.DataFrame, same: list[tuple[int, ...]], apart: set[tuple[int, int]]
) -> tuple[dict[int, int], list]:
    c = cluster_by_identifiers(f, ALL, same, apart)
    ids = f["ploomes_id"].tolist()
    return {ids[i]: ids[s] for i, s in enumerate(c.survivor)}, c.unjoined


def test_a_same_decision_joins_records_whatever_their_identifiers_and_different_splits_a_shared_email():
    f = frame(
        (1, 3, "11222333000181", None, "a@x.com"),  # typo'd CNPJ of the same company as 2
        (2, 1, "11222333000100", None, "b@x.com"),
        (3, 2, None, None, "contabil@escritorio.com"),  # two firms of one accountant
        (4, 0, None, None, "contabil@escritorio.com"),
        (5, 0, None, None, "c@x.com"),
    )
    assert survivors(f, ALL) == {1: 1, 2: 2, 3: 3, 4: 3, 5: 5}  # the identifiers alone
    decided, unjoined = _decided(f, [(2, 1), (99, 5)], {(3, 4)})
    assert decided == {1: 1, 2: 1, 3: 3, 4: 4, 5: 5} and unjoined == []  # 99 is not here: nothing to join


def test_a_same_decision_that_a_different_one_blocks_through_a_cluster_is_reported_not_applied():
    f = frame(
        (1, 3, None, "ERP-1", None),
        (2, 2, None, "ERP-1", None),  # joins 1 by its code
        (3, 1, None, None, "z@x.com"),
    )
    decided, unjoined = _decided(f, [(3, 2)], {(1, 3)})
    assert decided == {1: 1, 2: 1, 3: 3} and unjoined == [(3, 2)]


def test_branches_of_one_cnpj_root_and_a_shared_phone_are_candidates_with_their_reason():
    f = pd.DataFrame(
        {
            "ploomes_id": [1, 2, 3, 4, 5, 6],
            "document": ["11222333000181", "11222333000262", "99888777000100", "12345678901", None, None],
            "document_type": ["cnpj", "cnpj", "cnpj", "cpf", None, None],
            "phone": ["+551130000000", None, None, "+551130000000", "+5521999990000", "+5521999990001"],
        }
    )
    found = sorted((g["rule"], g["members"], g["score"]) for g in related_candidates(f))
    assert found == [("cnpj_branch", [1, 2], 80.0), ("same_phone", [1, 4], 85.0)]
