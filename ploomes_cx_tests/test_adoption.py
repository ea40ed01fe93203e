"""Adoption by the cheapest read (issue 14, part 2): CustomerX's records are listed at most once per
`sync` command and only on a mapping's first loads; after that a new record is looked up by filter,
and the lookups adopt exactly the records the listing would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from ploomes_cx.cli import main
from ploomes_cx.customerx.client import CallStats, CustomerXApi, CustomerXRejected
from ploomes_cx.customerx.own_id import MAX_LISTINGS
from ploomes_cx.load import ledger, listing
from ploomes_cx.load.adoption import Adoption
from ploomes_cx.load.loop import EntityLoad, Planned
from ploomes_cx.mapping import load_mapping
from ploomes_cx.runtime.duckdb_io import database_path
from ploomes_cx.sandbox import CustomerXSandbox, PloomesDataset
from ploomes_cx.sandbox.readings import READINGS
from ploomes_cx_tests.conftest import CX_TOKEN, point_at, write_mapping
from ploomes_cx_tests.helpers import cx_state

WINDOW = "2026-11-02"


@pytest.fixture
def dataset() -> PloomesDataset:
    return PloomesDataset(persons=120, seed=11)


def _listings(cx: CustomerXSandbox, since: int) -> dict[str, int]:
    """Full listings taken (unfiltered first pages asked for), per resource, after request `since`."""
    pages: dict[str, int] = {}
    for _, method, path in cx.requests[since:]:
        resource, _, query = path.removeprefix("/api/v1/").partition("?")
        keys = {pair.split("=")[0] for pair in query.split("&") if pair}
        if method == "GET" and keys <= {"page", "per_page", "max_results"} and "page=1&" in f"{query}&":
            pages[resource] = pages.get(resource, 0) + 1
    return pages


def test_a_multi_window_sync_lists_each_entity_once_and_the_next_sync_at_most_once(
    tmp_path, home, ploomes, customerx, monkeypatch
):
    point_at(monkeypatch, ploomes, customerx)
    path = write_mapping(tmp_path, "listed", "quality:\n  max_rejected_ratio: 0.9\n")
    # one window per run: the first run lists, the two after it reuse the stored listing
    path.write_text(path.read_text().replace("sync:\n", "sync:\n  windows_per_run: 1\n"))
    assert main(["sync", str(path), "--window", "2026-11-02..2026-11-04"]) == 0
    assert _listings(customerx, 0) == {"clients": 1, "contacts": 1, "contracts": 1}
    mark = len(customerx.requests)
    assert main(["sync", str(path), "--window", "2026-11-05..2026-11-06"]) == 0
    # a small account: listing it costs fewer requests than looking up its new records, once
    assert set(_listings(customerx, mark).values()) <= {1}


def _scenario(
    tmp_path: Path,
    ploomes,
    monkeypatch,
    adoption: str,
    identifiers: str,
    ignored: frozenset[str] = frozenset(),
) -> tuple[dict, list[tuple], dict[str, int]]:
    """A first sync; then CustomerX is edited by hand and our crosswalk forgets records; the same
    window again. Returns what CustomerX holds, what was adopted, and the listings taken.

    With identifiers [cnpj_cpf, external_code]: a client with its document masked, one with its
    "Código" typed by hand, one a killed run left pending. With [email]: a contact whose e-mail
    was upper-cased. Each is findable by one identifier only."""
    home = tmp_path / adoption / "state"
    home.mkdir(parents=True)
    monkeypatch.setenv("PLOOMES_CX_HOME", str(home))
    extra = f"quality:\n  max_rejected_ratio: 0.9\nidentifiers: [{identifiers}]\n"
    path = write_mapping(tmp_path / adoption, "adopt", extra)
    path.write_text(path.read_text().replace("customerx:\n", f"customerx:\n  adoption: {adoption}\n"))
    db = str(database_path(home, "adopt"))
    with CustomerXSandbox(
        token=CX_TOKEN, requests_per_minute=60_000, burst=1000, ignored_filters=ignored
    ) as cx:
        point_at(monkeypatch, ploomes, cx)
        assert main(["sync", str(path), "--window", WINDOW]) == 0
        forgotten = _edit_by_hand(cx, db, by_email="email" in identifiers)
        mark = len(cx.requests)
        assert main(["sync", str(path), "--window", WINDOW]) == 0
        with duckdb.connect(db, read_only=True) as con:
            adopted = con.execute(
                "select entity, external_id from adopt.ledger where outcome = 'adopted' order by 1, 2"
            ).fetchall()
        assert forgotten <= set(adopted)
        return cx_state(cx), adopted, _listings(cx, mark)


def _edit_by_hand(cx: CustomerXSandbox, db: str, by_email: bool) -> set[tuple[str, str]]:
    """CustomerX records changed as a person would, and the crosswalk rows that forget them."""
    with duckdb.connect(db) as con:
        if by_email:
            ext, email = con.execute(
                "select external_id, email from adopt.stg_contacts order by 1 limit 1"
            ).fetchone()
            for record in cx.store.records["contacts"].values():
                if record["external_id_contact"] == ext:
                    record.update(external_id_contact=None, email=email.upper())
            con.execute("delete from adopt.crosswalk where entity = 'contacts' and external_id = ?", [ext])
            return {("contacts", ext)}
        stg = "from adopt.stg_clients where document is not null and length(document) = 14"
        documented, pended = con.execute(f"select external_id, document {stg} order by 1 limit 2").fetchall()
        coded = con.execute(
            "select external_id, external_code from adopt.stg_clients where external_code is not null "
            "and external_id not in (?, ?) order by 1 limit 1",
            [documented[0], pended[0]],
        ).fetchone()
        clients = {c["external_id_client"]: c for c in cx.store.records["clients"].values()}
        d = documented[1]
        masked = f"{d[:2]}.{d[2:5]}.{d[5:8]}/{d[8:12]}-{d[12:]}"
        clients[documented[0]].update(external_id_client="LEGADO-1", cnpj_cpf=masked, email=None)
        clients[coded[0]].update(external_id_client=coded[1], cnpj_cpf=None, email=None)
        con.execute(
            "delete from adopt.crosswalk where entity = 'clients' and external_id in (?, ?)",
            [documented[0], coded[0]],
        )
        con.execute(
            "update adopt.crosswalk set state = 'pending', customerx_id = null, content_hash = null, "
            "body = null where entity = 'clients' and external_id = ?",  # a run killed mid-create
            [pended[0]],
        )
        return {("clients", documented[0]), ("clients", coded[0]), ("clients", pended[0])}


def test_client_lookups_adopt_the_records_the_listing_would_and_an_ignored_filter_falls_back(
    tmp_path, ploomes, monkeypatch
):
    ids = "cnpj_cpf, external_code"
    listed, listed_adopted, listings = _scenario(tmp_path, ploomes, monkeypatch, "listing", ids)
    assert listings.get("clients", 0) >= 1
    looked, looked_adopted, listings = _scenario(tmp_path, ploomes, monkeypatch, "lookup", ids)
    assert "clients" not in listings  # every client read was filtered
    assert looked == listed and looked_adopted == listed_adopted
    # a server that ignores ?cnpj_cpf= answers unfiltered pages: noticed, and the load lists instead
    ignored, ignored_adopted, listings = _scenario(
        tmp_path / "ignored", ploomes, monkeypatch, "lookup", ids, frozenset({"cnpj_cpf"})
    )
    assert listings.get("clients", 0) >= 1
    assert ignored == listed and ignored_adopted == listed_adopted


def test_contact_lookups_by_email_adopt_the_records_the_listing_would(tmp_path, ploomes, monkeypatch):
    listed, listed_adopted, listings = _scenario(tmp_path, ploomes, monkeypatch, "listing", "email")
    assert listings.get("contacts", 0) >= 1
    looked, looked_adopted, listings = _scenario(tmp_path, ploomes, monkeypatch, "lookup", "email")
    assert "contacts" not in listings  # ?email= found the upper-cased e-mail
    assert looked == listed and looked_adopted == listed_adopted


def test_the_read_is_chosen_by_counting(tmp_path):
    """First loads list; afterwards a few new records are looked up and many are listed."""
    m = load_mapping(write_mapping(tmp_path, "count"))
    with duckdb.connect(str(tmp_path / "state.duckdb")) as con:
        ledger.ensure(con, "count")

        def chosen(new: int) -> Adoption:
            adoption = Adoption(m, "clients", None, con, "sync-2", CallStats())
            rows = [(f"c{i}", {"document": f"{i:014d}", "external_code": f"X{i}"}) for i in range(new)]
            adoption.choose(rows, ledger.read(con, "count", "clients"))
            return adoption

        assert chosen(0).mode == "none"
        assert chosen(3).mode == "listing" and "first load" in chosen(3).reason
        listing.save(con, "count", "clients", "sync-1", [{"id": i} for i in range(1, 401)])
        held = ledger.Crosswalk(con, "count", "clients", "run")
        for i in range(1, 401):
            held.remember(f"o{i}", i, "h", {}, "sent")
        held.flush()
        few, many = chosen(3), chosen(50)
        # 400 records are 20 pages; 3 new records cost 3 x (2 document forms + 1 code) = 9 lookups
        assert (few.mode, few.estimates) == ("lookup", {"listing": 20, "lookup": 9})
        assert (many.mode, many.estimates["lookup"]) == ("listing", 150)
        # a client's e-mail cannot be filtered by (customerx-api.md §8.1): only the listing finds it
        blind = Adoption(m, "clients", None, con, "sync-2", CallStats())
        blind.choose([("c1", {"email": "c1@x.com.br"})], ledger.read(con, "count", "clients"))
        assert blind.mode == "listing" and "cannot be filtered" in blind.reason
        listing.save(con, "count", "clients", "sync-2", [{"id": i} for i in range(1, 401)])
        assert chosen(50).mode == "stored"  # listed earlier in this very sync: no request at all


def _create_contract_beside(tmp_path: Path, customerx: CustomerXSandbox, held: str, fault: str | None) -> Any:
    """Client C1 and its contract `held` made by hand; then our load creates contract K-ours
    (with `fault` on that POST). Returns what `create` returns."""
    for path, body in (
        ("/clients", {"external_id_client": "C1", "company_name": "Cliente"}),
        ("/contracts", {"external_id_client": "C1", "external_id_contract": held, "contract_value": 1}),
    ):
        assert httpx.post(
            customerx.url + path, json=body, headers={"Authorization": customerx.token}
        ).is_success
    if fault:
        customerx.faults.inject(fault)
    body = {"external_id_client": "C1", "external_id_contract": "K-ours", "contract_value": 2}
    m = load_mapping(write_mapping(tmp_path, "taken"))
    with (
        duckdb.connect(str(tmp_path / "state.duckdb")) as con,
        CustomerXApi(
            customerx.url, customerx.token, requests_per_minute=60_000, backoff_initial_seconds=0.01
        ) as api,
    ):
        ledger.ensure(con, "taken")
        load = EntityLoad(m, "contracts", api, con, "run-1")
        return load.create(Planned({"external_id": "K-ours"}, "K-ours", body, "digest"))


@pytest.mark.parametrize("reading", READINGS["duplicate_create"].values)
def test_a_create_whose_answer_was_lost_adopts_the_record_carrying_our_id_under_every_refusal(
    tmp_path, reading
):
    """customerx-api.md §7: what a duplicate external id earns is unknown, down to a second record
    (`accepted`). The first answer is lost (the contract is created, its answer broken): the POST
    is not sent again, a read by our external id finds it. The contract filter is not in the
    spec, so CustomerX answers every contract; the one carrying our id is taken, not the first."""
    readings = {"duplicate_create": reading}
    with CustomerXSandbox(
        token=CX_TOKEN, requests_per_minute=60_000, burst=1000, readings=readings
    ) as customerx:
        found = _create_contract_beside(tmp_path, customerx, "K-other", "malformed")
        posts = [w for w in customerx.writes if w["path"].startswith("/api/v1/contracts")]
        assert [w["status"] for w in posts] == [201, 201]  # K-other, then ours once: not sent again
        assert len(customerx.store.records["contracts"]) == 2
    assert found is not None and found["external_id_contract"] == "K-ours"


def test_a_409_on_create_is_re_read_and_the_record_carrying_our_id_adopted(tmp_path):
    """A 409 says the record exists: it is found by our external id (its text is not read)."""
    readings = {"duplicate_create": "409"}
    with CustomerXSandbox(
        token=CX_TOKEN, requests_per_minute=60_000, burst=1000, readings=readings
    ) as customerx:
        found = _create_contract_beside(tmp_path, customerx, "K-ours", None)
    assert found is not None and found["external_id_contract"] == "K-ours"


def test_refusals_not_about_our_id_stay_refused_and_an_ignored_filter_is_listed_a_bounded_number_of_times(
    tmp_path, customerx
):
    """A 422 may be a record already carrying our id (another integration of the account made it a
    moment ago): it is looked for, never read from the error text. The contract filter is not in
    the spec, so the answer is the whole list; it is kept for the load and listed again at most
    MAX_LISTINGS times, however many records are refused."""
    m = load_mapping(write_mapping(tmp_path, "refused"))
    headers = {"Authorization": customerx.token}
    assert httpx.post(
        customerx.url + "/clients", json={"external_id_client": "C1", "company_name": "C"}, headers=headers
    ).is_success
    other = {"external_id_client": "C1", "external_id_contract": "K-other", "contract_value": 1}
    assert httpx.post(customerx.url + "/contracts", json=other, headers=headers).is_success
    customerx.refuse(
        "contracts", lambda b: b.get("external_id_contract") != "K-other", {"contract_value": ["inválido"]}
    )
    with (
        duckdb.connect(str(tmp_path / "state.duckdb")) as con,
        CustomerXApi(customerx.url, customerx.token, requests_per_minute=60_000) as api,
    ):
        ledger.ensure(con, "refused")
        load = EntityLoad(m, "contracts", api, con, "run-1")
        for n in range(MAX_LISTINGS + 5):
            body = {"external_id_client": "C1", "external_id_contract": f"K-{n}", "contract_value": 2}
            with pytest.raises(CustomerXRejected):
                load.create(Planned({"external_id": f"K-{n}"}, f"K-{n}", body, "digest"))
    listings = [
        p for _, method, p in customerx.requests if method == "GET" and p.startswith("/api/v1/contracts")
    ]
    assert len(listings) == MAX_LISTINGS


def test_a_timeline_entry_left_pending_is_found_on_its_own_client(tmp_path, customerx):
    """A killed run left an entry `pending`: it is looked for before posting again. GET /timelines
    has no filter in the spec, so every entry answers; one with the same title and date on
    another client is not ours, and ours is adopted, not posted twice."""
    m = load_mapping(write_mapping(tmp_path, "notes"))
    headers = {"Authorization": customerx.token}
    entry = {"title": "Reunião", "body": "b", "created_at": "2026-11-03T10:00:00-03:00"}
    for client in ("A1", "B1"):
        client_body = {"external_id_client": client, "company_name": client}
        assert httpx.post(customerx.url + "/clients", json=client_body, headers=headers).is_success
        timeline_body = {**entry, "external_id_client": client, "operation": "client_note"}
        assert httpx.post(customerx.url + "/timelines", json=timeline_body, headers=headers).is_success
    ours = {**entry, "external_id_client": "B1", "operation": "client_note"}
    with (
        duckdb.connect(str(tmp_path / "state.duckdb")) as con,
        CustomerXApi(customerx.url, customerx.token, requests_per_minute=60_000) as api,
    ):
        ledger.ensure(con, "notes")
        load = EntityLoad(m, "timeline", api, con, "run-1")
        pending = ledger.Known(None, None, None, "pending")
        assert (
            load.post_once(Planned({"external_id": "note-1"}, "note-1", ours, "digest"), pending)[0]
            == "adopted"
        )
        load.crosswalk.flush()  # as the end of a load does
        held = ledger.read(con, "notes", "timeline")["note-1"].customerx_id
    b1 = next(t for t in customerx.store.records["timelines"].values() if t.get("client_id") != 1)
    assert held == b1["id"] and len(customerx.store.records["timelines"]) == 2
