"""A whole account, kept whole (§4.1): the history window and the parents fetched by Id.

Sandbox to sandbox over real HTTP, through Dagster and the CLI. The sandbox account's changes
spread over 2026-11-01..14, so a later window's persons, deals and notes point at organizations
and deals last changed days before it: exactly what a mapping starting today meets on a real
account with years of history.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote_plus, urlsplit

import duckdb
import pytest

from ploomes_cx.cli import main
from ploomes_cx.mapping import load_mapping
from ploomes_cx.ploomes.client import CallStats, PloomesApi
from ploomes_cx.runtime.duckdb_io import database_path
from ploomes_cx.sandbox import PloomesDataset, PloomesSandbox
from ploomes_cx_tests.conftest import SECRET_KEY, local, point_at, write_mapping

LOOSE = "quality:\n  max_rejected_ratio: 0.9\n"


def _query(home: Path, name: str, sql: str) -> list[tuple]:
    with duckdb.connect(str(database_path(home, name)), read_only=True) as con:
        return con.execute(sql.replace("{s}", name)).fetchall()


def _held_ids(home: Path, name: str) -> set[int]:
    """Every Ploomes record the mapping's raw tables hold, from windows or fetched by Id."""
    tables = [
        r[0]
        for r in _query(
            home, name, "select table_name from information_schema.tables where table_schema = '{s}'"
        )
    ]
    ids: set[int] = set()
    for table in tables:
        if table.startswith("raw_") and table not in ("raw_fields", "raw_dependencies"):
            ids |= {r[0] for r in _query(home, name, f"select id from {{s}}.{table}")}
    if "raw_dependencies" in tables:
        ids |= {
            r[0] for r in _query(home, name, "select id from {s}.raw_dependencies where payload is not null")
        }
    return ids


def _no_parent_outside_the_windows(home: Path, name: str) -> None:
    """A child is rejected for its client only when its parent is held and was itself left out
    (a nameless organization), never because no window extracted the parent."""
    held = _held_ids(home, name)
    orphans = _query(
        home, name, "select entity, ploomes_id, value from {s}.rejected where rule = 'client_not_found'"
    )
    unheld = [(e, pid, v) for e, pid, v in orphans if v is not None and int(float(v)) not in held]
    assert unheld == [], f"children rejected because their parent was never read: {unheld[:5]}"


@pytest.mark.persons(250)  # the whole history of any account: its size proves nothing
def test_the_first_window_with_history_brings_the_whole_account_as_of_its_end(
    home, tmp_path, ploomes, customerx, monkeypatch
):
    point_at(monkeypatch, ploomes, customerx)
    path = write_mapping(tmp_path, "hist", LOOSE)
    path.write_text(path.read_text().replace('start: "2026-11-01"', 'start: "2026-11-10"'))
    assert main(["sync", str(path), "--window", "2026-11-10"]) == 0
    end = local(2026, 11, 11)
    for entity in ("organizations", "persons", "deals", "notes", "tasks", "attachments"):
        raw = {r[0] for r in _query(home, "hist", f"select id from {{s}}.raw_{entity}")}
        expected = set(ploomes.dataset.expected_ids(entity, local(2000, 1, 1), end))
        assert raw == expected, entity
        assert len(expected) > len(ploomes.dataset.expected_ids(entity, local(2026, 11, 10), end)), entity
    _no_parent_outside_the_windows(home, "hist")
    staged = _query(home, "hist", "select count(*) from {s}.stg_clients")[0][0]
    assert len(customerx.store.records["clients"]) == staged > 0


def test_a_later_window_fetches_each_missing_parent_once_and_nothing_else(
    home, tmp_path, ploomes, customerx, monkeypatch
):
    point_at(monkeypatch, ploomes, customerx)
    path = write_mapping(tmp_path, "later", LOOSE)
    m = load_mapping(path)
    asked_before = len(ploomes.requests)
    assert main(["sync", str(path), "--window", "2026-11-12"]) == 0

    deps = _query(home, "later", "select entity, id, needed_by from {s}.raw_dependencies")
    assert deps, "a later window of the sandbox always needs older parents"
    assert len({(e, i) for e, i, _ in deps}) == len(deps), "a parent stored twice"
    window = {
        e: {r[0] for r in _query(home, "later", f"select id from {{s}}.raw_{e}")}
        for e in ("organizations", "persons", "deals", "notes", "tasks", "attachments")
    }
    fetched = {i for _, i, _ in deps}
    assert not fetched & set().union(*window.values()), "fetched a record a window already held"
    # every fetched parent is named by the record that needed it, and that record is held
    held = _held_ids(home, "later")
    for _, _, needed_by in deps:
        child = int(needed_by.split()[1])
        assert child in held, needed_by

    # each Id asked of Ploomes once in the run
    asked: list[tuple[str, int]] = []
    for _, url in ploomes.requests[asked_before:]:
        entity_set = urlsplit(url).path
        if " and Id gt " in unquote_plus(url):
            continue  # the next page of one batch repeats its list
        for key, ids in re.findall(r"\b(\w*Id) in \(([0-9,]+)\)", unquote_plus(url)):
            asked += [(f"{entity_set} {key}", int(x)) for x in ids.split(",")]
    assert asked and len(asked) == len(set(asked))

    # every person lands on its organization's client (or the survivor it was merged into)
    survivor = {}
    for ext, pid, aliases in _query(
        home, "later", "select external_id, ploomes_id, aliases from {s}.stg_clients"
    ):
        for member in [pid, *[int(a) for a in aliases.split(",") if a]]:
            survivor[member] = ext
    persons = _query(home, "later", "select c.ploomes_id, c.client_external_id from {s}.stg_contacts c")
    company = {
        r[0]: r[1]
        for r in _query(
            home,
            "later",
            "select id, (payload->>'$.CompanyId')::bigint from {s}.raw_persons union all "
            "select id, (payload->>'$.CompanyId')::bigint from {s}.raw_dependencies where entity = 'persons'",
        )
    }
    assert persons
    for pid, client in persons:
        assert client == survivor[company[pid]], pid
    _no_parent_outside_the_windows(home, "later")
    assert m.sync.history  # the default: a later window stays an increment all the same
    older = set(ploomes.dataset.expected_ids("organizations", local(2026, 11, 1), local(2026, 11, 12)))
    loaded = {int(c["external_id_client"]) for c in customerx.store.records["clients"].values()}
    assert loaded - window["organizations"] <= fetched
    assert len(loaded & older) < len(older) / 2, "loaded much of the history instead of only the parents"


def test_a_parent_ploomes_no_longer_has_is_a_rejection_with_its_reason(
    home, tmp_path, ploomes, customerx, monkeypatch
):
    point_at(monkeypatch, ploomes, customerx)
    path = write_mapping(tmp_path, "gone", LOOSE)
    data = ploomes.dataset
    in_window = set(data.expected_ids("persons", local(2026, 11, 12), local(2026, 11, 13)))
    orgs_before = set(data.expected_ids("organizations", local(2026, 11, 1), local(2026, 11, 12)))
    contacts = data.tables["contacts"].cols
    person = next(
        int(i)
        for i, company in zip(contacts["Id"], contacts["CompanyId"], strict=True)
        if int(i) in in_window and int(company) in orgs_before and data.twin_of(int(company)) is None
    )
    company = int(contacts["CompanyId"][data.tables["contacts"].index_of(person)])
    data.delete("contacts", company)
    assert main(["sync", str(path), "--window", "2026-11-12"]) == 0
    assert _query(home, "gone", f"select payload from {{s}}.raw_dependencies where id = {company}") == [
        (None,)
    ]
    rules = _query(
        home, "gone", f"select rule from {{s}}.rejected where entity = 'persons' and ploomes_id = {person}"
    )
    assert ("parent_deleted",) in rules


def test_a_server_refusing_the_in_operator_is_asked_with_or(tmp_path):
    dataset = PloomesDataset(persons=200, seed=3)
    with PloomesSandbox(
        dataset, user_key=SECRET_KEY, requests_per_minute=60_000, burst=1000, readings={"id_in": "400"}
    ) as server:
        with PloomesApi(server.url, SECRET_KEY, requests_per_minute=60_000, ids_per_request=7) as api:
            ids = [int(i) for i in dataset.tables["contacts"].cols["Id"][5:40:3]]
            got = [r["Id"] for page in api.iter_by_ids("/Contacts", ids, (), CallStats()) for r in page]
            assert sorted(got) == sorted(ids)
            assert api.forms.get("id_list") == "or"
        assert any(" in (" in unquote_plus(url) for _, url in server.requests)  # asked with `in` first
