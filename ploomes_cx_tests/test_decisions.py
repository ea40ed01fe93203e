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
from ploomes_cx.sandbox.clock import to_ms
from ploomes_cx_tests.conftest import local, point_at, write_mapping

LOOSE = "quality:\n  max_rejected_ratio: 0.9\n"
WINDOW = "2026-11-01..2026-11-03"
HEADER = ",".join(COLUMNS) + "\n"
# the story needs a few records of each kind, not the whole 800-person account (issue 29)
pytestmark = pytest.mark.persons(150)


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


def _on(customerx, client: str, kind: str) -> list[dict]:
    """The records of `kind` CustomerX links to `client` (by its numeric id, as it serves them)."""
    records = customerx.store.records
    numeric = {c["id"] for c in records["clients"].values() if c["external_id_client"] == client}
    return [r for r in records[kind].values() if r.get("client_id") in numeric]


def _children(customerx, client: str) -> dict[str, int]:
    """How many contacts, contracts and timeline entries CustomerX links to `client`."""
    return {kind: len(_on(customerx, client, kind)) for kind in ("contacts", "contracts", "timelines")}


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


def _ledger(home: Path, name: str, where: str) -> list[tuple]:
    return _staged(home, name, f"select entity, external_id, outcome, detail from {{s}}.ledger where {where}")


def _loaded_then_decided(home, tmp_path, customerx, policy: str, before_deciding=None):
    """Two clients loaded with their children, then decided `same`: (mapping, kept, away, the
    children CustomerX held under each before the decision)."""
    mapping = write_mapping(tmp_path, "late", LOOSE + f"deletes:\n  policy: {policy}\n")
    mapping.write_text(mapping.read_text().replace("customerx:\n", "customerx:\n  max_attempts: 2\n"))
    assert main(["sync", str(mapping), "--window", WINDOW]) == 0
    two_contacts = [
        c for c in _clients_with_children(home, "late") if len(_on(customerx, c, "contacts")) >= 2
    ]
    a, b = two_contacts[:2]
    before = {c: _children(customerx, c) for c in (a, b)}
    assert all(n > 0 for counts in before.values() for n in counts.values()), before
    if before_deciding is not None:
        before_deciding(a, b)
    _decide(mapping, f"same,{a} {b},one company entered twice,ana@cs.example,2026-12-02")
    writes = len(customerx.successful_writes())
    assert main(["sync", str(mapping), "--window", WINDOW, "--dry-run"]) == 0
    assert len(customerx.successful_writes()) == writes
    survivor = _staged(
        home, "late", f"select external_id from {{s}}.stg_clients where external_id in ('{a}', '{b}')"
    )
    assert len(survivor) == 1
    # the decision restaged what its two Ids reach, not the account (issue 30)
    [(mode, reason)] = _staged(
        home, "late", "select mode, reason from {s}.staging_log order by recorded_at desc limit 1"
    )
    assert mode == "incremental" and reason.startswith("the decisions changed"), reason
    kept = survivor[0][0]
    away = ({a, b} - {kept}).pop()
    # the dry run tells what the decision will do
    told = {step: _load_metadata(step) for step in ("clients", "contacts", "contracts", "timeline")}
    verb = "would_delete" if policy == "delete" else "would_keep"
    assert told["clients"]["merged_away_clients"].value == {verb: 1}
    moving = {"contacts": "contacts", "contracts": "contracts", "timeline": "timelines"}
    assert {s: told[s]["moved"].value for s in moving} == {s: before[away][k] for s, k in moving.items()}

    refused = before_deciding is not None  # a record CustomerX refuses is exit 1 (§2)
    assert main(["sync", str(mapping), "--window", WINDOW]) == (1 if refused else 0)
    return mapping, kept, away, before


def _load_metadata(entity: str) -> dict:
    event = dg.DagsterInstance.get().get_latest_materialization_event(dg.AssetKey(["late", f"load_{entity}"]))
    return event.asset_materialization.metadata


def _settled(home, away: str) -> list[tuple]:
    return _ledger(
        home,
        "late",
        f"entity = 'clients' and external_id = '{away}' and outcome not in ('created', 'unchanged')",
    )


def _writes_nothing_more(mapping: Path, customerx) -> None:
    writes = len(customerx.successful_writes())
    assert main(["sync", str(mapping), "--window", WINDOW]) == 0
    assert len(customerx.successful_writes()) == writes


def test_a_decision_added_after_both_were_loaded_moves_the_children_and_keeps_the_merged_away_client_per_ignore(
    home, tmp_path, ploomes, customerx, monkeypatch, capsys
):
    point_at(monkeypatch, ploomes, customerx)
    mapping, kept, away, before = _loaded_then_decided(home, tmp_path, customerx, "ignore")
    said = capsys.readouterr()
    assert "load_clients: " in said.out + said.err
    assert "1 merged-away client would be kept" in said.out + said.err  # the dry run
    assert "1 merged-away client kept" in said.out + said.err
    assert f"{before[away]['contacts']} moved to the client theirs was merged into" in said.out + said.err
    after = _children(customerx, kept)
    assert after == {
        k: before[kept][k] + before[away][k] for k in after
    }  # timeline entries posted again there
    clients = {c["external_id_client"] for c in customerx.store.records["clients"].values()}
    # kept as it is: nothing of ours left on it but the timeline entries it always had
    assert away in clients
    assert _children(customerx, away) == {
        "contacts": 0,
        "contracts": 0,
        "timelines": before[away]["timelines"],
    }
    settled = _settled(home, away)
    assert [r[2] for r in settled] == ["merged_away"] and f"merged into client {kept}" in settled[0][3]
    moved = _ledger(home, "late", "outcome = 'moved'")
    assert {r[0] for r in moved} == {"contacts", "contracts", "timeline"}
    assert len(moved) == sum(before[away].values())
    _writes_nothing_more(mapping, customerx)

    # the merged-away record changes last in Ploomes (the sandbox's last day, later than any
    # record): it survives again, takes back its own CustomerX record (whose external id nothing
    # else may take), and the other one is merged away in turn
    ploomes.touch("contacts", int(away), when_ms=to_ms(local(2026, 11, 14, 23, 59)))
    assert main(["sync", str(mapping), "--window", "2026-11-14"]) == 0
    survivor = f"select external_id from {{s}}.stg_clients where external_id in ('{kept}', '{away}')"
    assert _staged(home, "late", survivor) == [(away,)]
    both = {k: before[kept][k] + before[away][k] for k in before[kept]}
    now_on = _children(customerx, away)
    assert all(now_on[k] >= both[k] for k in both), (now_on, both)  # the last day may add some
    assert _children(customerx, kept) == {"contacts": 0, "contracts": 0, "timelines": both["timelines"]}
    assert [r[2] for r in _settled(home, kept)] == ["merged_away"]
    assert _ledger(home, "late", "outcome = 'rejected'") == []


def test_a_decision_added_after_both_were_loaded_deletes_the_merged_away_client_only_once_it_holds_nothing(
    home, tmp_path, ploomes, customerx, monkeypatch
):
    """deletes.policy: delete. A contact CustomerX refuses on the survivor is put back where it
    was, and its client is not deleted while it holds it; a contact whose move breaks halfway
    (deleted, then CustomerX down) is created on the survivor by the next sync, which also moves
    the refused one and deletes the client."""
    point_at(monkeypatch, ploomes, customerx)
    victims: dict[str, str] = {}  # e-mail -> the client it is on: refused (422) on the other
    broken: dict[str, str] = {}  # the same, failing (500) on the other

    def elsewhere(chosen: dict[str, str]):
        return lambda body: (
            body.get("email") in chosen and body.get("external_id_client") != chosen[body["email"]]
        )

    def refuse_two_contacts_each(a: str, b: str) -> None:
        for client in (a, b):
            first, second = _on(customerx, client, "contacts")[:2]
            victims[first["email"]], broken[second["email"]] = client, client
        customerx.refuse(
            "contacts", elsewhere(victims), {"phones": ["has already been taken for this client"]}
        )
        customerx.refuse("contacts", elsewhere(broken), {"base": ["boom"]}, status=500)

    mapping, kept, away, before = _loaded_then_decided(
        home, tmp_path, customerx, "delete", refuse_two_contacts_each
    )
    victim = next(email for email, client in victims.items() if client == away)
    on_away = [c["email"] for c in _on(customerx, away, "contacts")]
    assert on_away == [victim]  # put back, and the only record left on it
    refused = _ledger(home, "late", "entity = 'contacts' and outcome = 'rejected'")
    assert len(refused) == 1 and f"put back on client {away}" in refused[0][3]
    assert _settled(home, away) == []
    halfway = next(email for email, client in broken.items() if client == away)
    assert halfway not in {c["email"] for c in customerx.store.records["contacts"].values()}
    assert [r[2] for r in _ledger(home, "late", "entity = 'contacts' and outcome = 'failed'")] == ["failed"]

    customerx.refusals.clear()
    assert main(["sync", str(mapping), "--window", WINDOW]) == 0
    clients = {c["external_id_client"] for c in customerx.store.records["clients"].values()}
    assert away not in clients and [r[2] for r in _settled(home, away)] == ["deleted"]
    after = _children(customerx, kept)
    assert after == {k: before[kept][k] + before[away][k] for k in after}
    _writes_nothing_more(mapping, customerx)
