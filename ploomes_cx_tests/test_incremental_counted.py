"""Ten changes on a large account are staged alone (issue 30, "counted rows, not seconds"): deals,
notes and tasks, or deals, tasks and three organizations or persons. The staging that follows
them stages again the records they reach, not the account, and still leaves the tables and counts
a full re-stage leaves. (It still reads every record's digest, `reach.refresh_seen`, the identity
index, and the tables it keeps: docs/incremental-staging.md.)

The account (2,000 persons and their organizations, deals, notes, tasks and attachments from the
sandbox's generator) is written straight into the raw tables, as `test_incremental_parties.py`
does: a sync through the sandboxes would spend its time in CustomerX writes that prove nothing
here. `stage` is the staging asset's own function; the tables are written back as the asset's IO
manager writes them, and `finish` records the staging, as the asset does.
"""

from __future__ import annotations

import random

import duckdb
import numpy as np
import pandas as pd
import pytest

from ploomes_cx.mapping import Mapping, parse_mapping
from ploomes_cx.plan import Plan
from ploomes_cx.sandbox import PloomesDataset
from ploomes_cx.staging.build import build_staging, staging_mode
from ploomes_cx.staging.stage import Staging, finish, stage
from ploomes_cx.staging.validate import apply_contracts
from ploomes_cx_tests.test_incremental_parties import TABLES, _append, _stamp

PERSONS = 2_000
CHANGED = 10


def _account(persons: int = PERSONS) -> dict[str, dict[int, dict]]:
    dataset = PloomesDataset(persons=persons, seed=11)
    return {
        table: {r["Id"]: r for r in (dataset.render(table, i) for i in range(len(dataset.tables[table])))}
        for table in TABLES
    }


def _written(con: duckdb.DuckDBPyConnection, m: Mapping, staging: Staging) -> None:
    """The staging's tables in DuckDB, as its asset's IO manager replaces them, then its log row."""
    plan = Plan.of(m)
    for name, frame in staging.tables.items():
        con.register("_out", frame)
        con.execute(f"create or replace table {m.name}.{plan.table(name)} as select * from _out")
        con.unregister("_out")
    finish(con, m, staging)


def _tasks_without_contact(rng: random.Random, account: dict[str, dict[int, dict]]) -> list[int]:
    """Three tasks on three deals lose their contact, so each finds its client through its deal:
    those deals (returned), moved to another contact, change the tasks' rows with no task changed."""
    by_deal = {
        t["DealId"]: pid for pid, t in sorted(account["tasks"].items()) if t.get("DealId") in account["deals"]
    }
    deals = rng.sample(sorted(by_deal), 3)
    for deal in deals:
        account["tasks"][by_deal[deal]] = account["tasks"][by_deal[deal]] | {"ContactId": None}
    return deals


def _ten_changes(
    rng: random.Random, account: dict[str, dict[int, dict]], moved: list[int]
) -> dict[str, dict[int, dict]]:
    """Two deals moved to another contact (`moved`), two won or lost, three notes and three tasks moved."""
    contacts, deals = sorted(account["contacts"]), sorted(account["deals"])
    kept = sorted(pid for pid, task in account["tasks"].items() if task["ContactId"] is not None)
    picked = {
        "deals": [*moved[:2], *rng.sample(sorted(set(deals) - set(moved)), 2)],
        "notes": rng.sample(sorted(account["notes"]), 3),
        "tasks": rng.sample(kept, 3),  # not the tasks that find their client through their deal
    }
    changed: dict[str, dict[int, dict]] = {e: {} for e in picked}
    for n, pid in enumerate(picked["deals"]):
        deal = dict(account["deals"][pid])
        if n < 2:
            deal["ContactId"] = rng.choice(contacts)
        else:
            deal["StatusId"] = 3 if deal["StatusId"] == 2 else 2
        changed["deals"][pid] = _stamp(deal, 21, "deals")
    for pid in picked["notes"]:
        changed["notes"][pid] = _stamp(
            account["notes"][pid] | {"ContactId": rng.choice(contacts)}, 21, "notes"
        )
    for pid in picked["tasks"]:
        changed["tasks"][pid] = _stamp(account["tasks"][pid] | {"DealId": rng.choice(deals)}, 21, "tasks")
    assert sum(len(c) for c in changed.values()) == CHANGED
    return changed


def _party_changes(
    rng: random.Random, account: dict[str, dict[int, dict]], changed: dict[str, dict[int, dict]]
) -> None:
    """Three of the ten changes made to organizations and persons instead of notes: a company
    renamed, a person's e-mail copied from another's (a duplicate made), a person moved to
    another company."""
    contacts = account["contacts"]
    orgs = sorted(i for i, r in contacts.items() if r["TypeId"] == 1)
    persons = sorted(i for i, r in contacts.items() if r["TypeId"] == 2 and r["Email"])
    del changed["notes"]
    org = rng.choice(orgs)
    person, other, mover = rng.sample(persons, 3)
    changed["contacts"] = {
        org: _stamp(contacts[org] | {"Name": f"Renomeada {org} Ltda"}, 21, "organizations"),
        person: _stamp(contacts[person] | {"Email": contacts[other]["Email"]}, 21, "persons"),
        mover: _stamp(contacts[mover] | {"CompanyId": rng.choice(orgs)}, 21, "persons"),
    }


def _rows(frame: pd.DataFrame) -> list[tuple]:
    """Each row's cells as text; a numpy scalar as the Python value DuckDB stores (a column of
    Int64 gives `np.int64(7)` where one of objects gives `7`: the same BIGINT once written)."""
    frame = frame.drop(columns=["run_id"], errors="ignore")
    return sorted(
        tuple(repr(v.item() if isinstance(v, np.generic) else v) for v in row)
        for row in frame.itertuples(index=False)
    )


@pytest.mark.parametrize("parties", [False, True], ids=["children", "parties"])
def test_ten_changes_to_a_large_account_stage_again_only_the_records_they_reach(parties: bool) -> None:
    m = parse_mapping(
        {"name": "inc", "clients": {"source": "organizations"}, "custom_fields": {"clients": []}},
        "test_incremental_counted.py",
    )
    account = _account()
    rng = random.Random(3)
    moved = _tasks_without_contact(rng, account)
    with duckdb.connect() as con:
        con.execute("create schema inc")
        _append(con, account, "first")
        first = stage(con, m, "first")
        _written(con, m, first)
        assert first.mark.mode == "full" and first.reached is None
        changes = _ten_changes(rng, account, moved)
        if parties:
            _party_changes(rng, account, changes)
        _append(con, changes, "second")
        second = stage(con, m, "second")
        assert second.mark.mode == "incremental", second.mark.reason
        full = build_staging(con, m, "full")
        with staging_mode():
            full_tables = apply_contracts(full, list(Plan.of(m).staged), "full")
    assert second.reached is not None
    reached = sum(len(ids) for ids in second.reached.values())
    records = sum(len(rows) for rows in account.values())
    contacts = second.reached.get("contacts", set())
    if parties:
        # a company brings its persons and their children; an e-mail its holders: still tens
        # of records of the account's thousands (it was 24 contacts and 93 records of 5,900 when written)
        assert set(changes["contacts"]) <= contacts
        assert len(contacts) <= 60 and reached <= 150, second.reached
        assert records > 40 * reached
    else:
        # the changed records, the timeline entries of the four changed deals, the deals of
        # entries that find their client through their deal: tens of records of the thousands
        assert CHANGED <= reached <= 60, second.reached
        assert records > 100 * reached
        assert contacts == set()  # no organization or person staged again
    for table in ("contracts", "timeline", "rejected", "clients", "contacts", "duplicate_clusters"):
        assert _rows(second.tables[table]) == _rows(full_tables[table]), table
    assert second.staged.counts == full.counts


def test_an_organization_gone_from_the_raw_tables_leaves_its_persons_as_a_full_re_stage_does() -> None:
    """A record can leave the raw tables without a reconcile saying so (a parent fetched by Id for
    one window, that window extracted again without it). Its persons are reached through its
    company link and staged again; they must not find it among the clients stored before (it
    failed so: two contacts kept pointing at a client spliced away, and the blocking
    `client_exists` check stopped the sync)."""
    m = parse_mapping(
        {"name": "inc", "clients": {"source": "organizations"}, "custom_fields": {"clients": []}},
        "test_incremental_counted.py",
    )
    account = _account(persons=100)
    companies = [r["CompanyId"] for r in account["contacts"].values() if r["TypeId"] == 2 and r["CompanyId"]]
    gone = max(set(companies), key=companies.count)  # the organization with the most persons
    with duckdb.connect() as con:
        con.execute("create schema inc")
        _append(con, account, "first")
        _written(con, m, stage(con, m, "first"))
        con.execute("delete from inc.raw_organizations where id = ?", [gone])
        second = stage(con, m, "second")
        assert second.mark.mode == "incremental", second.mark.reason
        full = build_staging(con, m, "full")
        with staging_mode():
            full_tables = apply_contracts(full, list(Plan.of(m).staged), "full")
    assert second.reached is not None and gone in second.reached["contacts"]
    assert str(gone) not in set(second.tables["contacts"]["client_external_id"])
    for table in ("contracts", "timeline", "rejected", "clients", "contacts", "duplicate_clusters"):
        assert _rows(second.tables[table]) == _rows(full_tables[table]), table
    assert second.staged.counts == full.counts


def _org(pid: int, name: str, email: str | None, cnpj: str, hour: int) -> dict:
    record = {"Id": pid, "TypeId": 1, "Name": name, "Email": email, "Register": cnpj, "CNPJ": cnpj}
    return _stamp(
        record | {"CompanyId": None, "ContactName": f"Pessoa {pid}", "OtherProperties": []},
        hour,
        "organizations",
    )


# (identifiers, the organizations before, the change): each organization is its own contact
ORG_CONTACT_STORIES = {
    # two companies share an e-mail, which is no identifier here: the newer keeps the contact
    # e-mail (one contact per e-mail in CustomerX), the other is refused; the newer's e-mail then
    # changes, and the other must get its contact back (the e-mail is a link of the index)
    "shared_email": (
        ["cnpj_cpf"],
        [
            (1, "Empresa Um Comercio", "x@acme.com.br", "11222333000181"),
            (2, "Empresa Dois", "x@acme.com.br", "45997418000153"),
        ],
        (1, "Empresa Um Comercio", "y@acme.com.br", "11222333000181"),
    ),
    # a survivor without e-mail merged with a branch that has one: its contact keeps its own
    # (none), whether or not a nameless company was dropped beside it (a full staging drops one,
    # a staging of the changed company alone does not)
    "cluster_values": (
        ["cnpj_cpf", "external_code", "email"],
        [
            (1, "Alfa Comercio", None, "11222333000181"),
            (2, "Alfa Comercio Filial", "x@alfa.com.br", "11222333000181"),
            (3, "", "n@beta.com.br", "45997418000153"),  # nameless: dropped before a full staging's merge
        ],
        (1, "Alfa Comercio Ltda", None, "11222333000181"),
    ),
}


@pytest.mark.parametrize("story", sorted(ORG_CONTACT_STORIES))
def test_organization_contacts_staged_again_as_a_full_re_stage_stages_them(story: str) -> None:
    identifiers, before, change = ORG_CONTACT_STORIES[story]
    m = parse_mapping(
        {
            "name": "inc",
            "identifiers": identifiers,
            "clients": {"source": "organizations"},
            "contacts": {"source": "organizations"},
            "custom_fields": {"clients": []},
        },
        "test_incremental_counted.py",
    )
    with duckdb.connect() as con:
        con.execute("create schema inc")
        orgs = {
            pid: _org(pid, name, email, cnpj, 10 - n) for n, (pid, name, email, cnpj) in enumerate(before)
        }
        _append(con, {"contacts": orgs}, "first")
        _written(con, m, stage(con, m, "first"))
        _append(con, {"contacts": {change[0]: _org(*change, 11)}}, "second")
        second = stage(con, m, "second")
        assert second.mark.mode == "incremental", second.mark.reason
        full = build_staging(con, m, "full")
        with staging_mode():
            full_tables = apply_contracts(full, list(Plan.of(m).staged), "full")
    for table in ("clients", "contacts", "rejected", "duplicate_clusters"):
        assert _rows(second.tables[table]) == _rows(full_tables[table]), table
    assert second.staged.counts == full.counts


def test_a_child_moved_to_a_person_the_mapping_does_not_read_finds_no_client_as_in_a_full_re_stage() -> None:
    """Contacts and clients from organizations: persons are not read, so a note on a person has
    no client in a full staging. A staging of that note alone looked the person's company up in
    the raw persons the mapping holds anyway, and gave the note a client."""
    m = parse_mapping(
        {
            "name": "inc",
            "clients": {"source": "organizations"},
            "contacts": {"source": "organizations"},
            "custom_fields": {"clients": []},
        },
        "test_incremental_counted.py",
    )
    account = _account(persons=100)
    person = next(i for i, r in sorted(account["contacts"].items()) if r["TypeId"] == 2 and r["CompanyId"])
    note = min(account["notes"])
    with duckdb.connect() as con:
        con.execute("create schema inc")
        _append(con, account, "first")  # raw_persons held, as a parent fetched for another reason
        _written(con, m, stage(con, m, "first"))
        _append(
            con,
            {"notes": {note: _stamp(account["notes"][note] | {"ContactId": person}, 21, "notes")}},
            "second",
        )
        second = stage(con, m, "second")
        assert second.mark.mode == "incremental", second.mark.reason
        full = build_staging(con, m, "full")
        with staging_mode():
            full_tables = apply_contracts(full, list(Plan.of(m).staged), "full")
    for table in ("timeline", "rejected"):
        assert _rows(second.tables[table]) == _rows(full_tables[table]), table
    assert second.staged.counts == full.counts


def test_a_re_staged_row_a_table_contract_refuses_makes_the_staging_a_full_one() -> None:
    """A full staging lists look-alikes and counts records before its contracts refuse rows; a
    staging of what changed cannot reproduce that from spliced tables, so a refusal among the
    re-staged rows stages everything, and says why."""
    m = parse_mapping(
        {"name": "inc", "clients": {"source": "organizations"}, "custom_fields": {"clients": []}},
        "test_incremental_counted.py",
    )
    account = _account(persons=100)
    deal = min(account["deals"])
    with duckdb.connect() as con:
        con.execute("create schema inc")
        _append(con, account, "first")
        _written(con, m, stage(con, m, "first"))
        won = account["deals"][deal] | {
            "StatusId": 2,
            "Amount": -100.0,
        }  # a contract's value is never negative
        _append(con, {"deals": {deal: _stamp(won, 21, "deals")}}, "second")
        second = stage(con, m, "second")
        full = build_staging(con, m, "full")
        with staging_mode():
            full_tables = apply_contracts(full, list(Plan.of(m).staged), "full")
    assert second.mark.mode == "full", second.mark.reason
    assert second.mark.reason.startswith("a table contract refused a re-staged row"), second.mark.reason
    refused = full_tables["rejected"]
    assert ((refused["entity"] == "stg_contracts") & (refused["ploomes_id"] == deal)).any()
    for table in ("contracts", "rejected", "clients", "duplicate_clusters"):
        assert _rows(second.tables[table]) == _rows(full_tables[table]), table
