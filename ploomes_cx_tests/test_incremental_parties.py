"""Re-staging only what a change reached, spliced into the tables before it, gives the tables a
full re-stage gives (issue 30, point 1).

A small sandbox account (organizations, persons, deals, notes, tasks, attachments) is written as
raw rows and staged; then records change the way dirty CRMs change (an e-mail, document or code
copied from another record, a person moved to another company, a name re-typed, identifiers
cleared, a deal moved to another contact or won and lost, a note or task moved) and their new
versions are appended. The reach is the product's: the changed parties and what they link to by
the values the staging before the change kept in the identity index or by their values now
(`identity_index.reach_parties`), then the children of the reached contacts and the changed
children (`staging/reach.py`). Checked: `build_staging(only=reach)` gives exactly the full
re-stage's rows for the reached records, and the tables before the change spliced with those
rows (`party_splice.splice_parties`: by record, merged clusters by survivor, look-alike
candidates listed again) are the full re-stage's tables and duplicate report.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pandas as pd
import pytest

from ploomes_cx.mapping import parse_mapping
from ploomes_cx.plan import Plan
from ploomes_cx.ploomes.entities import ENTITIES
from ploomes_cx.raw.frames import raw_frame
from ploomes_cx.raw.needs import DEPENDENCIES_TABLE, FETCHED_TABLES, LIVE_TABLE
from ploomes_cx.sandbox import PloomesDataset
from ploomes_cx.staging import identity_index
from ploomes_cx.staging import reach as children_reach
from ploomes_cx.staging.build import Staged, build_staging
from ploomes_cx.staging.party_splice import splice_parties
from ploomes_cx.staging.splice import SPLICED, made_from

ZONE = ZoneInfo("America/Sao_Paulo")
WINDOW = dg.TimeWindow(dt.datetime(2026, 9, 1, tzinfo=ZONE), dt.datetime(2026, 12, 2, tzinfo=ZONE))
TABLES = {
    "contacts": None,
    "deals": "deals",
    "notes": "notes",
    "tasks": "tasks",
    "attachments": "attachments",
}
IDENTIFIER_ORDERS = (
    ["cnpj_cpf", "external_code", "email"],
    ["email", "cnpj_cpf"],
    ["external_code"],
    ["email", "external_code", "cnpj_cpf"],
)
# B2B: clients are the organizations, a person's client is its company's (company links needed);
# B2C: clients are the persons themselves, so the reach is their identifiers and e-mails alone
# of the 125 contacts, 8 changes reached 49-55 (B2B) and 11-14 (B2C) when this was written
REACH_AT_MOST = {"b2b": 0.5, "b2c": 0.15, "org_contacts": 0.5}
# (clients, contacts) sources; org_contacts: each organization is its own contact, so an
# organization's e-mail is a contact e-mail (one contact per e-mail in CustomerX)
SHAPES = {
    "b2b": ("organizations", "persons"),
    "b2c": ("persons", "persons"),
    "org_contacts": ("organizations", "organizations"),
}


def _append(con: duckdb.DuckDBPyConnection, records: dict[str, dict[int, dict]], run_id: str) -> None:
    for table, by_id in records.items():
        parts = {"organizations": 1, "persons": 2} if table == "contacts" else {table: None}
        for entity, type_id in parts.items():
            mine = [r for r in by_id.values() if type_id is None or r["TypeId"] == type_id]
            rows, outside = raw_frame(mine, ENTITIES[entity].date_field, WINDOW, ZONE, run_id)
            assert not outside, entity
            con.register("_rows", rows)
            con.execute(f"create table if not exists inc.raw_{entity} as select * from _rows limit 0")
            con.execute(f"insert into inc.raw_{entity} by name select * from _rows")
            con.unregister("_rows")


def _stamp(record: dict, hour: int, entity: str) -> dict:
    return record | {ENTITIES[entity].date_field: f"2026-12-01T{hour:02d}:00:00.000-03:00"}


def _change_parties(
    rng: random.Random, records: dict[int, dict], merged: list[int], hour: int
) -> dict[int, dict]:
    """New versions of a few contacts; half of them merged with another, corrected so they leave
    their cluster (and the cluster they leave must change)."""
    changed: dict[int, dict] = {}
    ids, orgs = sorted(records), [i for i, r in records.items() if r["TypeId"] == 1]
    picked = rng.sample(merged, min(2, len(merged)))
    for pid in picked + rng.sample(sorted(set(ids) - set(picked)), 4 - len(picked)):
        record, other = dict(records[pid]), records[rng.choice(ids)]
        how = (
            "clear" if pid in merged else rng.choice(["email", "register", "key", "company", "name", "clear"])
        )
        edit_party(record, other, how, lambda: rng.choice(orgs))
        changed[pid] = _stamp(record, hour + len(changed), "organizations")
    return changed


def edit_party(record: dict, other: dict, how: str, company: Callable[[], int]) -> None:
    """`record` changed as CRM users change one: `other`'s e-mail, document or code copied, moved
    to the organization `company()` picks (a person), its identifiers cleared, or `other`'s name
    typed again with a trailing space (the same name once cleaned: a look-alike or a merge)."""
    if how == "email":
        record["Email"] = other["Email"]
    elif how == "register" and other["TypeId"] == record["TypeId"]:
        record.update(Register=other["Register"], CNPJ=other.get("CNPJ"), CPF=other.get("CPF"))
    elif how == "key":
        record["Key"] = other["Key"]
    elif how == "company" and record["TypeId"] == 2:
        record["CompanyId"] = company()
    elif how == "clear":
        record.update(Email=None, Register="", CNPJ=None, CPF=None, Key=None)
    else:  # a name typed again, also where the copy or the move does not apply
        record["Name"] = f"{other['Name']} "


def _change_children(
    rng: random.Random, account: dict[str, dict[int, dict]], hour: int
) -> dict[str, dict[int, dict]]:
    """A deal moved to another contact, a deal won or lost, a note and a task moved."""
    contacts, deals = sorted(account["contacts"]), account["deals"]
    deal = dict(deals[rng.choice(sorted(deals))]) | {"ContactId": rng.choice(contacts)}
    flipped = dict(deals[rng.choice(sorted(deals))])
    flipped["StatusId"] = 3 if flipped["StatusId"] == 2 else 2
    note = dict(account["notes"][rng.choice(sorted(account["notes"]))]) | {"ContactId": rng.choice(contacts)}
    task = dict(account["tasks"][rng.choice(sorted(account["tasks"]))]) | {
        "DealId": rng.choice(sorted(deals))
    }
    changed: dict[str, dict[int, dict]] = {"deals": {}, "notes": {}, "tasks": {}}
    for entity, record in (("deals", deal), ("deals", flipped), ("notes", note), ("tasks", task)):
        changed[entity][record["Id"]] = _stamp(record, hour, entity)
    return changed


def _rows(table: str, frame: pd.DataFrame, reach: dict[str, set[int]] | None = None) -> list[tuple]:
    """The rows made from reached records (all rows without a reach), cell by cell (a column's text
    form depends on its other values: a date column all at midnight prints without the time),
    without the run that made them."""
    if reach is not None:
        keys = made_from(table, frame)
        frame = frame[keys.isin([(s, i) for s, ids in reach.items() for i in ids] or [("", -1)])]
    frame = frame.drop(columns=["run_id"], errors="ignore")
    return sorted(tuple(map(repr, row)) for row in frame.itertuples(index=False))


def _tables(staged: Staged, reach: dict[str, set[int]] | None = None) -> dict[str, list[tuple]]:
    merged = staged.clusters[staged.clusters["kind"] == "merged"]
    return {t: _rows(t, getattr(staged, t), reach) for t in SPLICED} | {
        "merged": _rows("clusters", merged, reach)
    }


def _account(seed: int) -> dict[str, dict[int, dict]]:
    dataset = PloomesDataset(persons=100, seed=seed)
    return {
        table: {r["Id"]: r for r in (dataset.render(table, i) for i in range(len(dataset.tables[table])))}
        for table in TABLES
    }


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("seed", range(4))
def test_a_re_stage_of_the_reach_spliced_in_gives_the_full_re_stages_tables(seed: int, shape: str) -> None:
    rng = random.Random(seed)
    identifiers = IDENTIFIER_ORDERS[seed % len(IDENTIFIER_ORDERS)]
    clients, contacts = SHAPES[shape]
    m = parse_mapping(
        {
            "name": "inc",
            "identifiers": identifiers,
            "clients": {"source": clients},
            "contacts": {"source": contacts},
            "custom_fields": {"clients": []},
        },
        "test_incremental_parties.py",
    )
    account = _account(seed)
    with duckdb.connect() as con:
        con.execute("create schema inc")
        _append(con, account, "first")
        # a first round of changes makes duplicates (the sandbox's small accounts have few)
        account["contacts"] |= _change_parties(rng, account["contacts"], [], hour=6)
        _append(con, {"contacts": account["contacts"]}, "earlier")
        was = build_staging(con, m, "before")
        members = was.clusters.loc[was.clusters["kind"] == "merged", "member_ids"]
        merged = sorted({int(i) for ids in members for i in ids.split(",")})
        changed = {"contacts": _change_parties(rng, account["contacts"], merged, hour=12)}
        changed |= _change_children(rng, account, hour=20)
        moved = {e: set(c) for e, c in changed.items()}
        identity_index.replace(con, "inc")  # what the staging before the change left
        children_reach.refresh_seen(con, m)  # what the staging before the change read
        _append(con, changed, "second")
        # the seeds are the records whose latest version changed since: exactly the changed ones
        found, _ = children_reach.refresh_seen(con, m)
        if "persons" not in Plan.of(m).entity_extracts:  # organization contacts: persons unread
            moved["contacts"] = {i for i in moved["contacts"] if account["contacts"][i]["TypeId"] == 1}
        assert {k: v for k, v in (found or {}).items() if v} == {k: v for k, v in moved.items() if v}
        parties = identity_index.reach_parties(con, m, moved["contacts"], [])
        reach = children_reach.children(con, m, parties, moved)
        con.register("_reach", children_reach.reach_frame(reach))
        con.register("_stored", was.clients)  # stg_clients as the staging before the change left it
        full = build_staging(con, m, "after")
        alone = build_staging(con, m, "after-reach", only="_reach", stored="_stored")
    assert len(reach["contacts"]) < len(account["contacts"])  # a change reaches part of the account
    # and a small part: a company brings its persons (B2B), a child does not bring its contact
    assert len(reach["contacts"]) <= REACH_AT_MOST[shape] * len(account["contacts"])
    assert _tables(alone, reach) == _tables(full, reach)
    before, restaged = (
        {t: getattr(s, t) for t in SPLICED} | {"duplicate_clusters": s.clusters} for s in (was, alone)
    )
    spliced = splice_parties(m, before, restaged, reach, [])
    assert {t: _rows(t, spliced[t]) for t in SPLICED} == {t: _rows(t, getattr(full, t)) for t in SPLICED}
    # the whole duplicate report: merged clusters by survivor, look-alikes listed again
    assert _rows("clusters", spliced["duplicate_clusters"]) == _rows("clusters", full.clusters)


def test_records_fetched_by_id_since_the_last_staging_are_seeds_too() -> None:
    """A live re-read or a parent fetched by Id is a change like a window's row (`raw_live`,
    `raw_dependencies`) when its version differs from the one the last staging read; a record
    read again unchanged, or of an entity the mapping does not extract, is not."""
    m = parse_mapping({"name": "inc", "contracts": {"source": "none"}, "timeline": []}, "test")
    with duckdb.connect() as con:
        con.execute("create schema inc")
        for table in FETCHED_TABLES:
            con.execute(
                f"create table inc.{table} (entity varchar, id bigint, window_start timestamp, "
                "changed_at timestamp, extracted_at timestamp, payload varchar)"
            )
        con.execute(
            f"""insert into inc.{LIVE_TABLE} (entity, id, window_start, changed_at, extracted_at, payload) values
                ('persons', 77, null, '2026-12-01 10:00', '2026-12-01 10:01', '{{"Name": "Ana"}}'),
                ('persons', 78, null, '2026-12-01 10:00', '2026-12-01 10:01', '{{"Name": "Bia"}}')"""
        )
        assert children_reach.refresh_seen(con, m) == (None, False)  # no staging read them before
        con.execute(
            f"""insert into inc.{LIVE_TABLE} (entity, id, window_start, changed_at, extracted_at, payload) values
                ('persons', 77, null, '2026-12-01 11:00', '2026-12-01 11:01', '{{"Name": "Ana Maria"}}'),
                ('persons', 78, null, '2026-12-01 10:00', '2026-12-01 11:01', '{{"Name": "Bia"}}'),
                ('notes', 79, null, '2026-12-01 11:00', '2026-12-01 11:01', '{{}}')"""
        )
        con.execute(
            f"""insert into inc.{DEPENDENCIES_TABLE} (entity, id, window_start, changed_at, extracted_at, payload) values
                ('organizations', 80, null, '2026-12-01 09:00', '2026-12-01 11:01', '{{"Name": "Acme"}}')"""
        )
        seeds, gone_changed = children_reach.refresh_seen(con, m)
    assert seeds is not None and {k: v for k, v in seeds.items() if v} == {"contacts": {77, 80}}
    assert not gone_changed
