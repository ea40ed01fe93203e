"""The one identity rule, as dedupe, adoption and the staging check apply it."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from ploomes_cx.identity import CustomerXIndex, any_same_record, same_record
from ploomes_cx.sandbox.brazil import cnpj_digits, format_cnpj
from ploomes_cx.staging.checks import duplicate_identifiers
from ploomes_cx.staging.dedupe import cluster_by_identifiers

DOC_A = cnpj_digits("112223330001")
DOC_B = cnpj_digits("998887770001")
ORDERS = [list(p) for p in itertools.permutations(["cnpj_cpf", "external_code", "email"])]


def rec(document=None, email=None, code=None) -> dict:
    return {"document": document, "email": email, "external_code": code}


@pytest.mark.parametrize("identifiers", ORDERS)
def test_two_valid_documents_that_differ_are_never_the_same_record(identifiers):
    a, b = rec(DOC_A, "fiscal@x.com", "C1"), rec(DOC_B, "fiscal@x.com", "C1")
    assert not same_record(a, b, identifiers)


def test_the_first_identifier_both_have_decides():
    a, b = rec(None, "a@x.com", "C1"), rec(None, "b@x.com", "C1")
    assert not same_record(a, b, ["email", "external_code"])
    assert same_record(a, b, ["external_code", "email"])
    assert not same_record(rec(email="a@x.com"), rec(code="C1"), ["email", "external_code"])  # nothing shared


@pytest.mark.parametrize("identifiers", ORDERS)
def test_adoption_never_takes_a_record_with_another_valid_document(identifiers):
    cx = [{"id": 7, "external_id_client": "C1", "cnpj_cpf": format_cnpj(DOC_B), "email": "FISCAL@X.COM"}]
    index = CustomerXIndex(cx, "external_id_client", owners={})
    found, _ = index.match("500", rec(DOC_A, "fiscal@x.com", "C1"), identifiers)
    assert found is None


def test_adoption_compares_normalized_values_and_reads_codigo_as_the_external_code():
    cx = [
        {"id": 1, "external_id_client": None, "cnpj_cpf": format_cnpj(DOC_A), "email": None},
        {"id": 2, "external_id_client": " ERP-9 ", "cnpj_cpf": None, "email": "x@y.com"},
    ]
    index = CustomerXIndex(cx, "external_id_client", owners={})
    assert index.match("500", rec(DOC_A), ["cnpj_cpf"])[0]["id"] == 1  # formatted vs bare
    assert index.match("501", rec(code="ERP-9"), ["external_code"])[0]["id"] == 2
    assert index.match("502", rec(email="x@y.com", code="ERP-1"), ["external_code", "email"])[0] is None


def test_two_of_our_records_never_adopt_the_same_customerx_record():
    cx = [{"id": 9, "external_id_client": None, "cnpj_cpf": None, "email": "shared@x.com"}]
    index = CustomerXIndex(cx, "external_id_client", owners={})
    first, _ = index.match("500", rec(email="shared@x.com"), ["email"])
    index.claim(first["id"], "500")
    second, why = index.match("501", rec(email="shared@x.com"), ["email"])
    assert second is None and "500" in why
    # a record of ours that was merged into the survivor hands its CustomerX record over
    merged, _ = index.match("502", rec(email="shared@x.com"), ["email"], aliases=["500"])
    assert merged["id"] == 9


def test_dedupe_and_the_staging_check_agree_with_the_rule():
    frame = pd.DataFrame(
        {
            "ploomes_id": [1, 2, 3, 4],
            "changed_at": pd.to_datetime(["2026-11-01"] * 4),
            "document": [DOC_A, DOC_B, None, None],
            "external_code": [None, None, "C1", "C1"],
            "email": ["fiscal@x.com", "fiscal@x.com", "a@x.com", "b@x.com"],
        }
    )
    for identifiers in ORDERS:
        clusters = cluster_by_identifiers(frame, identifiers)
        merged = {
            (i, j)
            for i, j in itertools.combinations(range(4), 2)
            if clusters.survivor[i] == clusters.survivor[j]
        }
        rows = frame.to_dict("records")
        expected = {
            (i, j)
            for i, j in itertools.combinations(range(4), 2)
            if same_record(rows[i], rows[j], identifiers)
        }
        assert merged == expected, identifiers
        survivors = frame.iloc[sorted(set(clusters.survivor))].assign(external_id=lambda f: f["ploomes_id"])
        assert duplicate_identifiers(survivors, identifiers).empty


def test_the_block_check_the_staging_check_uses_is_the_rule_itself():
    import random

    rnd = random.Random(5)
    pick = lambda *xs: rnd.choice(xs)  # noqa: E731
    frame = pd.DataFrame(
        {
            "document": [pick(None, DOC_A, DOC_B) for _ in range(16)],
            "external_code": [pick(None, "C1", "C2") for _ in range(16)],
            "email": [pick(None, "a@x.com", "b@x.com") for _ in range(16)],
        }
    )
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    for identifiers in [*ORDERS, ["email"], ["external_code", "email"]]:
        for i, j in itertools.combinations(range(len(rows)), 2):
            pair = frame.iloc[[i, j]]
            assert any_same_record(pair, identifiers, block=1) == same_record(rows[i], rows[j], identifiers)
        # the whole frame in blocks finds a pair exactly when some pair is the same record
        expected = any(same_record(a, b, identifiers) for a, b in itertools.combinations(rows, 2))
        assert any_same_record(frame, identifiers, block=5) == expected
