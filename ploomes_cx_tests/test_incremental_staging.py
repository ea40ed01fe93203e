"""A staging of the changed children alone gives the tables, counts and CustomerX writes a full
re-stage gives (issue 30, point 1; `staging/incremental.py`).

Two state folders sync one sandbox account, each into its own CustomerX: one as shipped (staging
what changed when it can), one told to stage everything (`$PLOOMES_CX_FULL_RESTAGE`). Between
syncs, records change in Ploomes as CRM users change them: deals won, lost or moved to another
contact, notes and tasks moved, an organization renamed, nothing at all. After each sync the two
folders hold the same staging tables row for row (but the run that made them), the same counts,
and their CustomerX the same records; and the first took the path the changes allow: children
alone, or everything when an organization or person changed.
"""

from __future__ import annotations

import random
from pathlib import Path

import duckdb
import pytest

from ploomes_cx.cli import main
from ploomes_cx.runtime.duckdb_io import database_path
from ploomes_cx.sandbox import CustomerXSandbox, PloomesSandbox
from ploomes_cx.sandbox.clock import to_ms
from ploomes_cx.staging import incremental
from ploomes_cx.staging.stage import FULL_RESTAGE_ENV
from ploomes_cx_tests.conftest import CX_TOKEN, local, point_at, write_mapping
from ploomes_cx_tests.helpers import cx_state

pytestmark = pytest.mark.persons(150)
WINDOW = "2026-11-02"
TABLES = ("stg_clients", "stg_contacts", "stg_contracts", "stg_timeline", "rejected", "duplicate_clusters")


def _children_changes(
    rng: random.Random, ploomes: PloomesSandbox, home: Path, hour: int, kept: dict[str, int]
) -> None:
    """Children of the account changed between contacts the window holds (a child moved to a
    contact the account lacks brings it in, one moved away from a parent fetched only for it lets
    it go: party changes): a contract's deal lost, a deal won, one moved to another contact, a note
    moved. The first time, a task is moved onto a deal with no contact of its own (its client is
    then the deal's); the next time, that deal is moved, so the task changes client unchanged."""
    with duckdb.connect(str(database_path(home, "inc")), read_only=True) as con:
        window = "select id from inc.raw_persons union select id from inc.raw_organizations"
        contacts = sorted(r[0] for r in con.execute(window).fetchall())
        children = " union all ".join(
            f"select '{t}' as t, id, try_cast(payload->>'$.ContactId' as bigint) as c from inc.raw_{t}"
            for t in ("deals", "notes", "tasks")
        )
        # a child may leave its contact when the window holds that contact or others point at it
        rows = con.execute(
            f"""with k as ({children}) select t, id from k where c in ({window})
                or c in (select c from k group by c having count(*) >= 2)"""
        ).fetchall()
        movable = {t: sorted(i for kind, i in rows if kind == t) for t in ("deals", "notes", "tasks")}
        every_deal = sorted(r[0] for r in con.execute("select id from inc.raw_deals").fetchall())
        contracts = sorted(r[0] for r in con.execute("select ploomes_id from inc.stg_contracts").fetchall())
    deals = movable["deals"]
    notes, tasks = movable["notes"], movable["tasks"]
    when = to_ms(local(2026, 11, 2, hour))
    touch = ploomes.dataset.touch
    lost = rng.choice(contracts)
    won = rng.choice(sorted(set(every_deal) - set(contracts)))
    touch("deals", lost, {"StatusId": 3}, when_ms=when)
    touch("deals", won, {"StatusId": 2}, when_ms=when)
    others = sorted(set(deals) - {lost, won, kept.get("deal")})
    if others:
        touch("deals", rng.choice(others), {"ContactId": rng.choice(contacts)}, when_ms=when)
    if notes:
        touch("notes", rng.choice(notes), {"ContactId": rng.choice(contacts)}, when_ms=when)
    if "deal" not in kept:
        kept["deal"] = rng.choice(sorted(set(deals) - {lost, won}))
        touch("tasks", rng.choice(tasks), {"DealId": kept["deal"], "ContactId": None}, when_ms=when)
    elif kept["deal"] in deals:
        touch("deals", kept["deal"], {"ContactId": rng.choice(contacts)}, when_ms=when)


def _party_changes(rng: random.Random, ploomes: PloomesSandbox, home: Path, hour: int, split: bool) -> None:
    """Organizations and persons changed as CRM users change them: a company renamed, another
    renamed like a third (a look-alike), a person's
    e-mail copied from another person (a duplicate made), a person moved to another company, a
    company's CNPJ copied from another's; with `split`, a duplicate corrected out of its cluster
    (its identifiers cleared), so the values it had before decide what the change reaches."""
    ids, types = _contact_types(ploomes)
    orgs = [i for i, t in zip(ids, types, strict=True) if t == 1]
    persons = [i for i, t in zip(ids, types, strict=True) if t == 2]
    when = to_ms(local(2026, 11, 2, hour))
    touch = ploomes.dataset.touch
    render = ploomes.dataset.render
    org, other_org, namesake = rng.sample(orgs, 3)
    touch("contacts", org, {"Name": f"Renomeada {org} Ltda"}, when_ms=when)
    # a company entered again under another's name: a look-alike candidate appears
    name = render("contacts", ids.index(namesake))["Name"]
    touch("contacts", rng.choice(orgs), {"Name": f"{name} Ltda"}, when_ms=when)
    person, other = rng.sample(persons, 2)
    touch("contacts", person, {"Email": render("contacts", ids.index(other))["Email"]}, when_ms=when)
    touch("contacts", rng.choice(persons), {"CompanyId": rng.choice(orgs)}, when_ms=when)
    register = render("contacts", ids.index(other_org))["Register"]
    touch("contacts", rng.choice(orgs), {"Register": register, "CNPJ": register}, when_ms=when)
    if not split:
        return
    with duckdb.connect(str(database_path(home, "inc")), read_only=True) as con:
        members = con.execute(
            "select member_ids from inc.duplicate_clusters where kind = 'merged' order by cluster_id"
        ).fetchall()
    assert members, "the first round of party changes made no duplicate to correct"
    member = int(rng.choice(members)[0].split(",")[-1])
    cleared = {"Email": None, "Register": "", "CNPJ": None, "CPF": None, "Key": None}
    touch("contacts", member, cleared, when_ms=when)


def _contact_types(ploomes: PloomesSandbox) -> tuple[list[int], list[int]]:
    cols = ploomes.dataset.tables["contacts"].cols
    return [int(i) for i in cols["Id"]], [int(t) for t in cols["TypeId"]]


def _tables(home: Path, name: str) -> dict[str, list[tuple[str, ...]]]:
    with duckdb.connect(str(database_path(home, name)), read_only=True) as con:
        out = {}
        for table in TABLES:
            columns = [r[0] for r in con.execute(f"describe {name}.{table}").fetchall() if r[0] != "run_id"]
            rows = con.execute(f"select {', '.join(columns)} from {name}.{table}").fetchall()
            out[table] = sorted(tuple(map(repr, row)) for row in rows)
        return out


def _last_staging(home: Path, name: str) -> tuple[str, str, str]:
    with duckdb.connect(str(database_path(home, name)), read_only=True) as con:
        row = con.execute(
            f"select mode, reason, counts from {name}.staging_log order by recorded_at desc limit 1"
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


@pytest.mark.parametrize("seed", [1])
def test_staging_what_changed_ends_in_the_tables_and_customerx_of_a_full_re_stage(
    seed, tmp_path, ploomes, monkeypatch
):
    rng = random.Random(seed)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    folders = {"changes": tmp_path / "changes", "full": tmp_path / "full"}
    for folder in folders.values():
        folder.mkdir()
    servers = {
        k: CustomerXSandbox(token=CX_TOKEN, requests_per_minute=60_000, burst=1000).start() for k in folders
    }
    paths = {k: write_mapping(folders[k], "inc", "quality:\n  max_rejected_ratio: 0.9\n") for k in folders}
    rounds, kept = ["start", "children", "nothing", "children", "parties", "split"], {}
    try:
        for i, story in enumerate(rounds):
            if story == "children":
                _children_changes(rng, ploomes, folders["full"] / "state", 10 + i, kept)
            elif story in ("parties", "split"):
                _party_changes(rng, ploomes, folders["full"] / "state", 10 + i, split=story == "split")
            for k, folder in folders.items():
                point_at(monkeypatch, ploomes, servers[k])
                monkeypatch.setenv("PLOOMES_CX_HOME", str(folder / "state"))
                monkeypatch.setenv(FULL_RESTAGE_ENV, "1" if k == "full" else "")
                assert main(["sync", str(paths[k]), "--window", WINDOW]) == 0, (story, k)
            homes = {k: folders[k] / "state" for k in folders}
            assert _tables(homes["changes"], "inc") == _tables(homes["full"], "inc"), story
            mode, reason, counts = _last_staging(homes["changes"], "inc")
            assert counts == _last_staging(homes["full"], "inc")[2], story
            assert cx_state(servers["changes"]) == cx_state(servers["full"]), story
            assert mode == ("full" if story == "start" else "incremental"), (story, reason)
            if story == "nothing":
                assert reason.startswith("0 changed record"), reason
            if story in ("parties", "split"):
                assert "of them organizations or persons" in reason, reason
    finally:
        for server in servers.values():
            server.stop()


def test_a_holder_in_customerx_the_staged_contacts_disagree_with_stages_contacts_whole() -> None:
    """Who keeps a shared e-mail, or a phone within a client, is its holder in CustomerX: a
    crosswalk that disagrees with the staged contacts (an adoption, a hand-over, a refused update)
    would change rows kept as they were."""
    with duckdb.connect() as con:
        con.execute("create schema inc")
        con.execute(
            "create table inc.stg_contacts (external_id varchar, email varchar, client_external_id varchar, "
            "phone varchar)"
        )
        con.execute(
            "insert into inc.stg_contacts values ('7', 'Ana@x.com', '1', '+5511987654321'), ('8', null, '1', null)"
        )
        con.execute(
            "create table inc.crosswalk (entity varchar, external_id varchar, state varchar, body varchar)"
        )
        phone = '"phones": [{"number": "11987654321", "is_default": true, "ddi": "+55"}]'
        sent = f"""insert into inc.crosswalk values ('contacts', '7', 'sent',
                  '{{"email": "ana@x.com", "external_id_client": "1", {phone}}}')"""
        con.execute(sent)
        assert not incremental._holders_disagree(con, "inc")  # as staged (e-mail case aside)
        for body in (
            f'{{"email": "ana@y.com", "external_id_client": "1", {phone}}}',
            f'{{"email": "ana@x.com", "external_id_client": "2", {phone}}}',
            '{"email": "ana@x.com", "external_id_client": "1", "phones": []}',  # a refused phone change
            f'{{"email": "ana@x.com", "external_id_client": "1", {phone.replace("1198", "1197")}}}',
        ):
            con.execute("update inc.crosswalk set body = ? where external_id = '7'", [body])
            assert incremental._holders_disagree(con, "inc"), body
        held = f'{{"email": "ana@x.com", "external_id_client": "1", {phone}}}'
        con.execute("update inc.crosswalk set body = ? where external_id = '7'", [held])
        assert not incremental._holders_disagree(con, "inc")  # as staged again
        con.execute(
            """insert into inc.crosswalk values ('contacts', '9', 'sent', '{"email": "bia@x.com"}')"""
        )
        assert incremental._holders_disagree(con, "inc")  # a holder no longer staged


@pytest.mark.persons(40)
def test_a_staging_stopped_before_its_tables_were_written_is_followed_by_a_full_one(
    home, tmp_path, ploomes, customerx, monkeypatch, capsys
):
    """A staging killed halfway may have written some tables and not others: kept rows could then
    mix two stagings, so the next one stages everything, and says why."""
    point_at(monkeypatch, ploomes, customerx)
    path = str(write_mapping(tmp_path, "inc", "quality:\n  max_rejected_ratio: 0.9\n"))
    assert main(["sync", path, "--window", WINDOW]) == 0
    assert main(["sync", path, "--window", WINDOW]) == 0
    assert _last_staging(home, "inc")[:2] == (
        "incremental",
        "0 changed record(s), all deals, notes, tasks or attachments: 0 re-staged alone, every other row kept",
    )
    with duckdb.connect(str(database_path(home, "inc"))) as con:  # what a kill after the start leaves
        con.execute(
            "insert into inc.staging_log select run_id, started_at + interval 1 second, 'started', reason, "
            "mapping_digest, decisions_digest, '{}', now() from inc.staging_log order by recorded_at desc limit 1"
        )
    capsys.readouterr()
    assert main(["sync", path, "--window", WINDOW]) == 0
    assert _last_staging(home, "inc")[:2] == (
        "full",
        "the last staging stopped before its tables were written",
    )
    # the window's line says it too
    assert (
        "; staging full: the last staging stopped before its tables were written" in capsys.readouterr().out
    )
    assert main(["sync", path, "--window", WINDOW]) == 0
    assert _last_staging(home, "inc")[0] == "incremental"
