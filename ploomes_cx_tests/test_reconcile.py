"""Deletes (§4.2): `ploomes-cx reconcile` finds what Ploomes no longer has and applies
deletes.policy, behind the max_share guard. Sandbox to sandbox over real HTTP, through the CLI."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest

from ploomes_cx.cli import main
from ploomes_cx.runtime.duckdb_io import database_path
from ploomes_cx_tests.conftest import SP, point_at, write_mapping

LOOSE = "quality:\n  max_rejected_ratio: 0.9\n"
WINDOW = "2026-11-02"
# the story needs a few records of each kind, not the whole 800-person account (issue 29)
pytestmark = pytest.mark.persons(300)


def _contracts(customerx) -> dict[str, dict]:
    return {c["external_id_contract"]: dict(c) for c in customerx.store.records["contracts"].values()}


def _contracts_by_client(customerx) -> dict[str, list[str]]:
    clients = {c["id"]: c["external_id_client"] for c in customerx.store.records["clients"].values()}
    out: dict[str, list[str]] = defaultdict(list)
    for c in customerx.store.records["contracts"].values():
        out[clients[c["client_id"]]].append(c["external_id_contract"])
    return out


def _query(home: Path, name: str, sql: str) -> list[tuple]:
    with duckdb.connect(str(database_path(home, name)), read_only=True) as con:
        return con.execute(sql.format(s=name)).fetchall()


def _ledger_size(home: Path, name: str) -> int:
    return _query(home, name, "select count(*) from {s}.ledger")[0][0]


def test_reconcile_cancels_exactly_the_contracts_of_deleted_organizations_and_deals(
    home, tmp_path, ploomes, customerx, monkeypatch, capsys
):
    point_at(monkeypatch, ploomes, customerx)
    path = str(write_mapping(tmp_path, "gone", LOOSE + "deletes:\n  max_share: 0.5\n"))
    assert main(["sync", path, "--window", WINDOW]) == 0
    before, by_client = _contracts(customerx), _contracts_by_client(customerx)
    orgs = sorted(by_client)[:2]
    deal = next(ext for ext in sorted(before) if all(ext not in by_client[o] for o in orgs))
    expected = sorted([*by_client[orgs[0]], *by_client[orgs[1]], deal])
    for org in orgs:
        ploomes.dataset.delete("contacts", int(org))
    ploomes.dataset.delete("deals", int(deal))
    writes, ledger = len(customerx.writes), _ledger_size(home, "gone")

    assert main(["reconcile", path, "--dry-run"]) == 0
    assert customerx.writes[writes:] == []
    assert _ledger_size(home, "gone") == ledger
    assert "would cancel contracts" in capsys.readouterr().out

    assert main(["reconcile", path]) == 0
    new = customerx.writes[writes:]
    assert {(w["method"], w["path"]) for w in new} == {("POST", "/api/v1/cancel_contracts")}
    assert sorted(w["body"]["external_id_contract"] for w in new) == expected
    after = _contracts(customerx)
    today = dt.datetime.now(SP).strftime("%d/%m/%Y")
    assert all(after[e]["status"] == "canceled" for e in expected)
    assert after[deal]["cancellation_date"] == today
    assert {k: v for k, v in after.items() if k not in expected} == {
        k: v for k, v in before.items() if k not in expected
    }
    gone = _query(home, "gone", "select entity, external_id, outcome from {s}.ledger where outcome = 'gone'")
    assert sorted(gone) == [("clients", o, "gone") for o in orgs]
    out = capsys.readouterr().out
    assert "/Contacts" in out and "ids/request" in out and f"{len(expected)} cancelled" in out

    writes = len(customerx.writes)
    assert main(["reconcile", path]) == 0  # a second reconcile finds nothing new to do
    assert main(["sync", path, "--window", WINDOW]) == 0  # nor does a sync reactivate anything
    assert customerx.writes[writes:] == []
    assert all(_contracts(customerx)[e]["status"] == "canceled" for e in expected)


def test_reconcile_removes_nothing_when_more_than_max_share_of_organizations_is_gone(
    home, tmp_path, ploomes, customerx, monkeypatch, capsys
):
    point_at(monkeypatch, ploomes, customerx)
    path = str(write_mapping(tmp_path, "guard", LOOSE))
    assert main(["sync", path, "--window", WINDOW]) == 0
    clients = sorted(c["external_id_client"] for c in customerx.store.records["clients"].values())
    doomed = clients[: round(len(clients) * 0.6)]
    for org in doomed:
        ploomes.dataset.delete("contacts", int(org))
    writes = len(customerx.writes)

    assert main(["reconcile", path]) == 1
    assert customerx.writes[writes:] == []
    err = capsys.readouterr().err
    assert f"clients: {len(doomed)} of the {len(clients)}" in err and "max_share 10%" in err
    remembered = "select count(*) from information_schema.tables where table_name = 'ploomes_gone'"
    assert _query(home, "guard", remembered)[0][0] == 0  # nothing found gone is remembered either


def test_with_delete_gone_records_are_deleted_in_customerx_but_never_their_timeline(
    home, tmp_path, ploomes, customerx, monkeypatch
):
    point_at(monkeypatch, ploomes, customerx)
    path = str(write_mapping(tmp_path, "purge", LOOSE + "deletes:\n  policy: delete\n  max_share: 0.5\n"))
    assert main(["sync", path, "--window", WINDOW]) == 0
    by_client = _contracts_by_client(customerx)
    org = sorted(by_client)[0]
    cx_contacts = customerx.store.records["contacts"].values()
    person = next(c["external_id_contact"] for c in sorted(cx_contacts, key=lambda c: c["id"]))
    timeline = len(customerx.store.records["timelines"])
    ploomes.dataset.delete("contacts", int(org))
    ploomes.dataset.delete("contacts", int(person))
    writes = len(customerx.writes)

    assert main(["reconcile", path]) == 0
    new = [
        (w["method"], w["path"].split("?")[0], w["path"].split("=")[-1]) for w in customerx.writes[writes:]
    ]
    expected = [("DELETE", "/api/v1/contracts", c) for c in sorted(by_client[org])]
    expected += [("DELETE", "/api/v1/contacts", person), ("DELETE", "/api/v1/clients", org)]
    assert sorted(new) == sorted(expected) and new[-1] == expected[-1]  # the client after its children
    assert org not in {c["external_id_client"] for c in customerx.store.records["clients"].values()}
    assert len(customerx.store.records["timelines"]) == timeline
    sql = f"select external_id from {{s}}.crosswalk where external_id in ('{org}', '{person}')"
    assert _query(home, "purge", sql) == []  # a deleted record would be created anew if it came back

    writes = len(customerx.writes)
    assert main(["reconcile", path]) == 0
    assert main(["sync", path, "--window", WINDOW]) == 0
    assert customerx.writes[writes:] == []


def test_with_ignore_nothing_is_written_and_the_ledger_lists_what_is_gone(
    home, tmp_path, ploomes, customerx, monkeypatch
):
    point_at(monkeypatch, ploomes, customerx)
    path = str(write_mapping(tmp_path, "keepall", LOOSE + "deletes:\n  policy: ignore\n"))
    assert main(["sync", path, "--window", WINDOW]) == 0
    deal = sorted(_contracts(customerx))[0]
    ploomes.dataset.delete("deals", int(deal))
    writes = len(customerx.writes)
    assert main(["reconcile", path]) == 0
    assert customerx.writes[writes:] == []
    rows = _query(
        home, "keepall", "select entity, external_id, outcome, detail from {s}.ledger where outcome = 'gone'"
    )
    assert [(e, x, o) for e, x, o, _ in rows] == [("contracts", deal, "gone")]
    assert f"Deals {deal} is gone" in rows[0][3] and "deletes.policy: ignore" in rows[0][3]
    assert _contracts(customerx)[deal]["status"] == "active"
