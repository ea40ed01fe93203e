"""The sandbox Ploomes server itself: scale, determinism, dirt, OData errors, rate limit."""

from __future__ import annotations

import tracemalloc

import httpx
import numpy as np

from ploomes_cx.sandbox import PloomesDataset, PloomesSandbox
from ploomes_cx.sandbox.brazil import cnpj_digits, cpf_digits


def test_a_million_persons_fit_in_a_few_hundred_megabytes():
    tracemalloc.start()
    try:
        dataset = PloomesDataset(persons=1_000_000, seed=3)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (dataset.tables["contacts"].cols["TypeId"] == 2).sum() == 1_000_000
    assert peak < 600 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    last = dataset.render("contacts", len(dataset.tables["contacts"]) - 1)
    assert last["TypeId"] == 2 and last["Name"] is not None


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = (
        PloomesDataset(persons=300, seed=1),
        PloomesDataset(persons=300, seed=1),
        PloomesDataset(persons=300, seed=2),
    )
    assert [a.render("contacts", i) for i in range(0, 375, 37)] == [
        b.render("contacts", i) for i in range(0, 375, 37)
    ]
    assert not np.array_equal(
        a.tables["contacts"].cols["LastUpdateDate"], c.tables["contacts"].cols["LastUpdateDate"]
    )


def test_the_dataset_is_as_dirty_as_promised():
    dataset = PloomesDataset(persons=3000, seed=5)
    contacts = [dataset.render("contacts", i) for i in range(len(dataset.tables["contacts"]))]
    registers = [c["Register"] for c in contacts if c["Register"]]
    digits = ["".join(ch for ch in r if ch.isdigit()) for r in registers]
    valid = [d == (cnpj_digits(d[:12]) if len(d) == 14 else cpf_digits(d[:9])) for d in digits]
    assert any("." in r for r in registers) and any(r.isdigit() for r in registers)
    assert 0 < valid.count(False) < len(valid) / 5  # some wrong check digits
    emails = [c["Email"] for c in contacts if c["Email"]]
    assert any(e != e.lower() for e in emails) and any(
        "@" not in e or "@@" in e or e.endswith("@") for e in emails
    )
    assert any(c["Name"] == "" for c in contacts)
    assert any(ch in c["Name"] for c in contacts for ch in "ãçéô")
    twins = [c for c in contacts if c["TypeId"] == 1 and dataset.twin_of(c["Id"])]
    assert twins
    differently_written = 0
    for twin in twins:
        original = dataset.render("contacts", dataset.twin_of(twin["Id"]) - 1000)
        company_cnpj = dataset._company_base(original["Id"])[1]
        twin_digits = "".join(ch for ch in twin["Register"] if ch.isdigit())
        original_digits = "".join(ch for ch in original["Register"] if ch.isdigit())
        assert twin_digits == company_cnpj  # a twin always carries the company's valid CNPJ
        assert original_digits in ("", company_cnpj) or original_digits[:-1] == company_cnpj[:-1]
        differently_written += original_digits == company_cnpj and twin["Register"] != original["Register"]
    assert differently_written > 0  # formatted vs bare CNPJ of one company


def test_bad_queries_get_a_400_with_a_reason():
    with PloomesSandbox(PloomesDataset(persons=50), requests_per_minute=60_000, burst=100) as server:
        headers = {"User-Key": server.user_key}
        for flt, reason in [
            ("Name eq 'x'", "cannot filter on 'Name'"),
            ("Id gt", "ends too early"),
            ("contains(Name,'x')", "does not support the function"),
            ("LastUpdateDate ge 2026-11-01T00:00:00 03:00", "syntax error"),  # an unencoded '+'
        ]:
            r = httpx.get(f"{server.url}/Contacts", params={"$filter": flt}, headers=headers)
            assert r.status_code == 400 and reason in r.json()["error"]["message"], (flt, r.text)
        assert httpx.get(f"{server.url}/Nope", headers=headers).status_code == 404


def test_rate_limit_answers_429_sometimes_with_retry_after():
    server = PloomesSandbox(PloomesDataset(persons=50), requests_per_minute=60, burst=2)
    with server, httpx.Client(base_url=server.url, headers={"User-Key": server.user_key}) as client:
        answers = [client.get("/Account") for _ in range(6)]
    codes = [a.status_code for a in answers]
    assert codes[:2] == [200, 200] and codes[2:] == [429] * 4
    with_header = [a.headers.get("Retry-After") for a in answers[2:]]
    assert with_header.count(None) == 2 and all(h is None or int(h) >= 1 for h in with_header)


def test_admin_endpoints_inject_faults_and_touch_records():
    with PloomesSandbox(PloomesDataset(persons=50), requests_per_minute=60_000, burst=100) as server:
        headers = {"User-Key": server.user_key}
        httpx.post(f"{server.url}/_sandbox/faults", json={"kind": "500", "times": 2})
        codes = [httpx.get(f"{server.url}/Account", headers=headers).status_code for _ in range(3)]
        assert codes == [500, 500, 200]
        httpx.post(
            f"{server.url}/_sandbox/touch",
            json={"entity": "contacts", "id": 1000, "changes": {"Name": "Nova"}},
        )
        first = httpx.get(f"{server.url}/Contacts", params={"$filter": "Id eq 1000"}, headers=headers).json()
        assert first["value"][0]["Name"] == "Nova"
        assert first["value"][0]["LastUpdateDate"] >= "2026-11-25"
        assert httpx.get(f"{server.url}/_sandbox/stats").json()["faults_served"] == {"500": 2}
