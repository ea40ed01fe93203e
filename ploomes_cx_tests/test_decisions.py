"""A person's duplicate decisions (§4.4): the decisions file checked like a mapping, `same` and
`different` honoured by staging, Ids no record has reported, and what CustomerX receives."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ploomes_cx.cli import main
from ploomes_cx.decisions import COLUMNS, DecisionsError, load_decisions
from ploomes_cx.mapping import load_mapping
from ploomes_cx.runtime.duckdb_io import database_path
from ploomes_cx_tests.conftest import point_at, write_mapping

LOOSE = "quality:\n  max_rejected_ratio: 0.9\n"
WINDOW = "2026-11-01..2026-11-03"
HEADER = ",".join(COLUMNS) + "\n"


def _decide(mapping: Path, *rows: str) -> Path:
    path = mapping.with_name(f"{mapping.stem}.decisions.csv")
    path.write_text(HEADER + "".join(r + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    "rows, says",
    [
        (["same,1001 1002,,ana,2026-12-01"], None),
        (["maybe,1001 1002,,ana,2026-12-01"], ":2: decision must be same or different, not 'maybe'"),
        (["same,1001,,ana,"], ":2: ploomes_ids must be two or more different Ploomes Ids"),
        (["same,1001 1001,,ana,"], ":2: ploomes_ids must be two or more different"),
        (["same,1001 abc,,ana,"], ":2: ploomes_ids must be"),
        (["same,1001 1002,,ana,ontem"], ":2: decided_at must be an ISO date"),
        (["same,1001 1002,,ana"], ":2: 4 columns, the header has 5"),
        (
            ["same,1001 1002,,,", "same,1002 1003,,,", "different,1003 1001,,,"],
            ":4: 1003 and 1001 are decided",
        ),
    ],
)
def test_a_decisions_file_is_checked_like_a_mapping_naming_the_line(tmp_path, rows, says):
    mapping = write_mapping(tmp_path)
    _decide(mapping, *rows)
    m = load_mapping(mapping)
    if says is None:
        assert [(d.decision, d.ids) for d in load_decisions(m)] == [("same", (1001, 1002))]
        return
    with pytest.raises(DecisionsError) as err:
        load_decisions(m)
    assert says in str(err.value) and str(mapping.with_name("acme.decisions.csv")) in str(err.value)


def test_sync_refuses_a_malformed_decisions_file_with_exit_2_naming_the_line(home, tmp_path, capsys):
    mapping = write_mapping(tmp_path)
    mapping.with_name("acme.decisions.csv").write_text("decision,ids\nsame,1 2\n")
    assert main(["sync", str(mapping), "--window", "2026-11-01"]) == 2
    assert "acme.decisions.csv:1: the header must be decision,ploomes_ids" in capsys.readouterr().err
    assert not (home / "warehouse_acme.duckdb").exists()


def _staged(home: Path, name: str, sql: str) -> list[tuple]:
    with duckdb.connect(str(database_path(home, name)), read_only=True) as con:
        return con.execute(sql.format(s=name)).fetchall()


def _clients_with_children(home: Path, name: str) -> list[str]:
    """Clients the probe staged with at least one contact, contract and timeline entry each."""
    rows = _staged(
        home,
        name,
        """select c.external_id from {s}.stg_clients c
           where c.external_id in (select client_external_id from {s}.stg_contacts)
             and c.external_id in (select client_external_id from {s}.stg_contracts)
             and c.external_id in (select client_external_id from {s}.stg_timeline)
           order by c.external_id""",
    )
    return [r[0] for r in rows]


def _children(customerx, client: str) -> dict[str, int]:
    """How many contacts, contracts and timeline entries CustomerX links to `client`."""
    records = customerx.store.records
    numeric = {c["id"] for c in records["clients"].values() if c["external_id_client"] == client}
    return {
        kind: sum(1 for r in records[kind].values() if r.get("client_id") in numeric)
        for kind in ("contacts", "contracts", "timelines")
    }


def test_same_on_two_look_alike_organizations_gives_one_client_with_both_records_children(
    home, tmp_path, ploomes, customerx, monkeypatch
):
    point_at(monkeypatch, ploomes, customerx)
    probe = write_mapping(tmp_path, "probe", LOOSE)
    assert main(["sync", str(probe), "--window", WINDOW, "--dry-run"]) == 0
    a, b = _clients_with_children(home, "probe")[:2]
    name = ploomes.dataset.render("contacts", ploomes.dataset.tables["contacts"].index_of(int(a)))["Name"]
    ploomes.dataset.overrides[("contacts", int(b))] = {"Name": name.upper()}  # look-alike, own identifiers
    mapping = write_mapping(tmp_path, "decided", LOOSE)
    _decide(mapping, f"same,{a} {b},the same company entered twice,ana@cs.example,2026-12-01")
    assert main(["sync", str(mapping), "--window", WINDOW]) == 0

    held = {c["external_id_client"] for c in customerx.store.records["clients"].values()}
    survivor = (held & {a, b}).pop()
    assert len(held & {a, b}) == 1
    counted = _children(customerx, survivor)
    probe_rows = _staged(
        home,
        "probe",
        f"""select (select count(*) from {{s}}.stg_contacts where client_external_id in ('{a}', '{b}')),
                   (select count(*) from {{s}}.stg_contracts where client_external_id in ('{a}', '{b}')),
                   (select count(*) from {{s}}.stg_timeline where client_external_id in ('{a}', '{b}'))""",
    )[0]
    assert (counted["contacts"], counted["contracts"], counted["timelines"]) == probe_rows
    merged = _staged(
        home, "decided", "select member_ids, rule from {s}.duplicate_clusters where kind = 'merged'"
    )
    assert (",".join(sorted((a, b), key=int)), "decision") in merged


def test_different_on_two_organizations_sharing_only_an_email_gives_two_clients(
    home, tmp_path, ploomes, customerx, monkeypatch
):
    point_at(monkeypatch, ploomes, customerx)
    probe = write_mapping(tmp_path, "probe", LOOSE)
    assert main(["sync", str(probe), "--window", "2026-11-01", "--dry-run"]) == 0
    a, b = (
        r[0] for r in _staged(home, "probe", "select external_id from {s}.stg_clients order by 1 limit 2")
    )
    only_email = {"Register": None, "CNPJ": None, "Key": None, "Email": "financeiro@grupo-mesmo.com.br"}
    for org in (a, b):
        ploomes.dataset.overrides[("contacts", int(org))] = only_email
    merging = write_mapping(tmp_path, "merging", LOOSE)
    assert main(["sync", str(merging), "--window", "2026-11-01", "--dry-run"]) == 0
    assert (
        len({r[0] for r in _staged(home, "merging", "select external_id from {s}.stg_clients")} & {a, b}) == 1
    )

    mapping = write_mapping(tmp_path, "apart", LOOSE)
    _decide(
        mapping,
        f"different,{a} {b},two firms of one accounting office,ana@cs.example,2026-12-01",
        "same,999998 999999,deleted in Ploomes since,ana@cs.example,2026-12-01",  # reported, not fatal
    )
    assert main(["sync", str(mapping), "--window", "2026-11-01"]) == 0
    held = {c["external_id_client"] for c in customerx.store.records["clients"].values()}
    assert {a, b} <= held
    listed = _staged(
        home, "apart", "select kind, member_ids from {s}.duplicate_clusters where kind = 'different'"
    )
    assert listed == [("different", f"{a},{b}")]
    event = dg.DagsterInstance.get().get_latest_materialization_event(
        dg.AssetKey(["apart", "duplicate_clusters"])
    )
    meta = event.asset_materialization.metadata
    assert (meta["decided_different"].value, meta["decisions_with_missing_ids"].value) == (1, 1)
    assert "999998,999999" in meta["decisions"].value and f"{a},{b}" in meta["decisions"].value
