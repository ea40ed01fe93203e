"""End to end, sandbox to sandbox over real HTTP, through Dagster: the CustomerX load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from ploomes_cx.cli import main
from ploomes_cx.mapping import load_mapping
from ploomes_cx.runtime.duckdb_io import database_path
from ploomes_cx.sandbox import CustomerXSandbox, PloomesDataset, PloomesSandbox
from ploomes_cx.sandbox.brazil import cnpj_digits
from ploomes_cx.sandbox.clock import to_ms
from ploomes_cx_tests.conftest import CX_TOKEN, SECRET_KEY, local, point_at, write_mapping
from ploomes_cx_tests.helpers import cx_state, staged

WINDOWS = "2026-11-02..2026-11-04"
# what the load does with a record does not depend on how many there are: a smaller account
# (the `dataset` fixture's) keeps every story below and each sync shorter (issue 29)
pytestmark = pytest.mark.persons(150)


@pytest.fixture
def full(tmp_path):
    return load_mapping(write_mapping(tmp_path, "fullsync", "quality:\n  max_rejected_ratio: 0.9\n"))


def test_full_sync_loads_every_staged_record_and_a_rerun_writes_nothing(
    home, full, ploomes, customerx, monkeypatch, capsys
):
    point_at(monkeypatch, ploomes, customerx)
    assert main(["sync", full.source_path, "--window", WINDOWS]) == 0
    state = cx_state(customerx)
    assert [r[0] for r in state["clients"]] == sorted(r[0] for r in staged(home, "fullsync", "stg_clients"))
    assert [r[0] for r in state["contacts"]] == sorted(r[0] for r in staged(home, "fullsync", "stg_contacts"))
    assert [r[0] for r in state["contracts"]] == sorted(
        r[0] for r in staged(home, "fullsync", "stg_contracts")
    )
    assert len(state["timelines"]) == len(staged(home, "fullsync", "stg_timeline")) > 0
    documents = dict(staged(home, "fullsync", "stg_clients", "external_id, document"))
    assert all(c[2] == documents[c[0]] for c in state["clients"])  # never an invalid document
    out = capsys.readouterr().out
    assert "clients" in out and "created" in out

    writes = len(customerx.writes)
    assert main(["sync", full.source_path, "--window", WINDOWS]) == 0
    assert len(customerx.writes) == writes  # an immediate re-run makes no write
    assert cx_state(customerx) == state


def test_changing_one_ploomes_record_makes_exactly_one_write(home, full, ploomes, customerx, monkeypatch):
    point_at(monkeypatch, ploomes, customerx)
    assert main(["sync", full.source_path, "--window", WINDOWS]) == 0
    # a client its windows extracted: a parent fetched by Id carries its (sandbox-future) change date,
    # and a touch dated before it would be an older version
    extracted = {r[0] for r in staged(home, "fullsync", "raw_organizations", "id")}
    client_id = next(int(r[0]) for r in staged(home, "fullsync", "stg_clients") if int(r[0]) in extracted)
    ploomes.dataset.touch(
        "contacts", client_id, {"Name": "Nome Trocado Ltda"}, when_ms=to_ms(local(2026, 11, 4, 15))
    )
    before = len(customerx.writes)
    assert main(["sync", full.source_path, "--window", "2026-11-04"]) == 0
    new_writes = customerx.writes[before:]
    assert len(new_writes) == 1 and new_writes[0]["method"] == "PUT"
    assert new_writes[0]["body"]["trading_name"] == "Nome Trocado Ltda"


def test_an_existing_client_with_the_same_cnpj_is_adopted_not_duplicated(
    home, full, ploomes, customerx, monkeypatch
):
    point_at(monkeypatch, ploomes, customerx)
    assert main(["sync", full.source_path, "--window", "2026-11-02"]) == 0
    with duckdb.connect(str(database_path(home, "fullsync")), read_only=True) as con:
        ext, document = con.execute(
            "select external_id, document from fullsync.stg_clients where document is not null limit 1"
        ).fetchall()[0]
    # Start again with a CustomerX account that already has that company, entered by someone else.
    customerx.store.records = {r: {} for r in customerx.store.records}
    customerx.store.records["clients"][1] = {
        "id": 1,
        "external_id_client": "LEGADO-1",
        "company_name": "Antiga",
        "cnpj_cpf": document,
    }
    customerx.store.next_id = 2
    with duckdb.connect(str(database_path(home, "fullsync"))) as con:
        con.execute("delete from fullsync.crosswalk")
    assert main(["sync", full.source_path, "--window", "2026-11-02"]) == 0
    same_document = [c for c in customerx.store.records["clients"].values() if c.get("cnpj_cpf") == document]
    assert len(same_document) == 1
    assert same_document[0]["id"] == 1 and same_document[0]["external_id_client"] == ext
    with duckdb.connect(str(database_path(home, "fullsync")), read_only=True) as con:
        outcome = con.execute(
            "select outcome from fullsync.ledger where external_id = ? order by recorded_at desc", [ext]
        ).fetchall()[0][0]
    assert outcome == "adopted"


def test_a_refused_record_is_in_the_ledger_does_not_stop_the_others_and_is_retried(
    home, full, ploomes, customerx, monkeypatch, capsys
):
    point_at(monkeypatch, ploomes, customerx)
    assert main(["sync", full.source_path, "--window", "2026-11-02"]) == 0
    victim = staged(home, "fullsync", "stg_contacts", "external_id, email")[0]
    with duckdb.connect(str(database_path(home, "fullsync"))) as con:
        con.execute("delete from fullsync.crosswalk where entity = 'contacts'")
    customerx.store.records["contacts"] = {}
    customerx.refuse("contacts", lambda body: body.get("email") == victim[1], {"phones": ["is invalid"]})
    assert main(["sync", full.source_path, "--window", "2026-11-02"]) == 1
    assert "refused by CustomerX" in capsys.readouterr().err
    emails = {c["email"] for c in customerx.store.records["contacts"].values()}
    assert victim[1] not in emails and len(emails) == len(staged(home, "fullsync", "stg_contacts")) - 1
    with duckdb.connect(str(database_path(home, "fullsync")), read_only=True) as con:
        row = con.execute(
            "select outcome, http_status, detail from fullsync.ledger where external_id = ? "
            "and entity = 'contacts' order by recorded_at desc limit 1",
            [victim[0]],
        ).fetchall()[0]
    assert row[0] == "rejected" and row[1] == 422 and "is invalid" in row[2]
    customerx.refusals.clear()
    assert main(["sync", full.source_path, "--window", "2026-11-02"]) == 0  # retried, and now it lands
    assert victim[1] in {c["email"] for c in customerx.store.records["contacts"].values()}


def test_a_record_failing_after_retries_exits_1_and_a_refused_token_exits_3(
    home, tmp_path, ploomes, customerx, monkeypatch, capsys
):
    m = load_mapping(write_mapping(tmp_path, "retrying", "quality:\n  max_rejected_ratio: 0.9\n"))
    text = m.source_path
    Path(text).write_text(Path(text).read_text().replace("customerx:\n", "customerx:\n  max_attempts: 2\n"))
    point_at(monkeypatch, ploomes, customerx)
    customerx.refuse("clients", _first_only(), {"base": ["boom"]}, status=500)  # one client always breaks
    assert main(["sync", text, "--window", "2026-11-02"]) == 1
    with duckdb.connect(str(database_path(home, "retrying")), read_only=True) as con:
        failed = con.execute("select count(*) from retrying.ledger where outcome = 'failed'").fetchall()[0][0]
    assert failed == 1
    monkeypatch.setenv("CUSTOMERX_TOKEN", "wrong-cx-token")
    assert main(["sync", text, "--window", "2026-11-03"]) == 3
    err = capsys.readouterr().err
    assert "$CUSTOMERX_TOKEN" in err and "wrong-cx-token" not in err


def _first_only():
    """A predicate true for the first client body it sees, and for that client only afterwards."""
    seen: list[str] = []

    def when(body: dict) -> bool:
        if not seen:
            seen.append(body["external_id_client"])
        return body["external_id_client"] == seen[0]

    return when


def test_dry_run_writes_nothing_and_reports_what_would_change(
    home, full, ploomes, customerx, monkeypatch, capsys
):
    point_at(monkeypatch, ploomes, customerx)
    assert main(["sync", full.source_path, "--window", "2026-11-02", "--dry-run"]) == 0
    assert customerx.writes == []
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("clients"))
    assert int(line.split()[5]) == len(
        staged(home, "fullsync", "stg_clients")
    )  # created column: would create
    assert "nothing was written to CustomerX" in out
    table = [
        x.split()
        for x in out.splitlines()
        if x.split()[:1] in (["clients"], ["contacts"], ["contracts"], ["timeline"])
    ]
    writes = sum(int(row[5]) + int(row[6]) for row in table)
    assert writes > 0 and f"+ {writes} CustomerX write(s) at 6000 requests/min" in out  # the real run's ETA


def test_a_run_killed_mid_load_resumes_to_the_same_state_as_an_uninterrupted_run(tmp_path, monkeypatch):
    def account(tag: str, customerx_rpm: int) -> tuple[PloomesSandbox, CustomerXSandbox, Path, Path]:
        ploomes = PloomesSandbox(
            PloomesDataset(persons=150, seed=11), user_key=SECRET_KEY, requests_per_minute=60_000, burst=1000
        ).start()
        cx = CustomerXSandbox(token=CX_TOKEN, requests_per_minute=60_000, burst=1000).start()
        folder = tmp_path / tag
        folder.mkdir()
        return (
            ploomes,
            cx,
            folder / "state",
            write_mapping(
                folder,
                "kill",
                "quality:\n  max_rejected_ratio: 0.9\n",
                customerx_rpm=customerx_rpm,
            ),
        )

    def env(ploomes, cx, home) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("PLOOMES", "CUSTOMERX", "DAGSTER"))}
        return {
            **base,
            "PLOOMES_CX_HOME": str(home),
            "PLOOMES_BASE_URL": ploomes.url,
            "PLOOMES_USER_KEY": SECRET_KEY,
            "CUSTOMERX_BASE_URL": cx.url,
            "CUSTOMERX_TOKEN": CX_TOKEN,
        }

    cli = str(Path(sys.executable).parent / "ploomes-cx")
    # the uninterrupted run only gives the state to compare with: it runs at full speed; the
    # other is paced so that the kill lands in the middle of its load
    p1, cx1, home1, mapping1 = account("straight", 6000)
    p2, cx2, home2, mapping2 = account("killed", 900)
    try:
        done = subprocess.run(
            [cli, "sync", str(mapping1), "--window", "2026-11-02..2026-11-03"],
            env=env(p1, cx1, home1),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        total = len(cx1.successful_writes())
        assert total > 40
        proc = subprocess.Popen(
            [cli, "sync", str(mapping2), "--window", "2026-11-02..2026-11-03"],
            env=env(p2, cx2, home2),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 300
        while (
            len(cx2.successful_writes()) < total // 3 and time.monotonic() < deadline and proc.poll() is None
        ):
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert 0 < len(cx2.successful_writes()) < total  # killed mid-load
        # the resume's pace proves nothing: it runs at full speed
        paced = mapping2.read_text()
        assert "requests_per_minute: 900\n" in paced
        mapping2.write_text(paced.replace("requests_per_minute: 900\n", "requests_per_minute: 6000\n"))
        again = subprocess.run(
            [cli, "sync", str(mapping2), "--window", "2026-11-02..2026-11-03"],
            env=env(p2, cx2, home2),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert again.returncode == 0, again.stderr
        assert cx_state(cx2) == cx_state(cx1)  # nothing lost, nothing doubled
    finally:
        for server in (p1, cx1, p2, cx2):
            server.stop()


def _plain_organizations(dataset: PloomesDataset, n: int) -> list[int]:
    """Organizations that are not twins of another one (so nothing else merges into them)."""
    found = []
    for i in range(dataset.n_orgs):
        cid = 1000 + i
        if dataset.twin_of(cid) is None and all(
            dataset.twin_of(1000 + j) != cid for j in range(dataset.n_orgs)
        ):
            found.append(cid)
        if len(found) == n:
            return found
    raise AssertionError("not enough organizations")


def test_organizations_sharing_an_email_with_different_cnpjs_never_adopt_each_other(
    home, full, ploomes, customerx, monkeypatch
):
    """Regression: the second company (other CNPJ, same accountant e-mail, a later window) was
    PUT over the first one's CustomerX client."""
    point_at(monkeypatch, ploomes, customerx)
    a, b = _plain_organizations(ploomes.dataset, 2)
    shared = "fiscal@contabilidade-unica.com.br"
    for cid, base, day in ((a, "111222330001", 2), (b, "445556660001", 3)):
        ploomes.dataset.touch(
            "contacts",
            cid,
            {"Email": shared, "Register": cnpj_digits(base)},
            when_ms=to_ms(local(2026, 11, day, 9)),
        )
    assert main(["sync", full.source_path, "--window", "2026-11-02..2026-11-03"]) == 0
    clients = {c["external_id_client"]: c for c in customerx.store.records["clients"].values()}
    assert clients[str(a)]["cnpj_cpf"] == cnpj_digits("111222330001")
    assert clients[str(b)]["cnpj_cpf"] == cnpj_digits("445556660001")
    # every CustomerX client carries one document only ever: no write crossed two documents
    documents: dict[str, set] = {}
    for w in customerx.successful_writes():
        if "/clients" in w["path"] and w["body"].get("cnpj_cpf"):
            documents.setdefault(w["body"]["external_id_client"], set()).add(w["body"]["cnpj_cpf"])
    assert all(len(d) == 1 for d in documents.values())
    with duckdb.connect(str(database_path(home, "fullsync")), read_only=True) as con:
        adopted = con.execute("select count(*) from fullsync.ledger where outcome = 'adopted'").fetchall()[0][
            0
        ]
    assert adopted == 0


def test_a_client_made_by_hand_without_external_id_is_adopted_by_its_numeric_id(
    home, full, ploomes, customerx, monkeypatch
):
    """Regression: adoption sent `PUT /clients?external_id_client=<numeric id>`, a 404 on every run,
    and the client's contacts earned a 422 each time."""
    point_at(monkeypatch, ploomes, customerx)
    assert main(["sync", full.source_path, "--window", "2026-11-02", "--dry-run"]) == 0
    with duckdb.connect(str(database_path(home, "fullsync")), read_only=True) as con:
        ext, document = con.execute(
            "select c.external_id, c.document from fullsync.stg_clients c join fullsync.stg_contacts p "
            "on p.client_external_id = c.external_id where c.document is not null limit 1"
        ).fetchall()[0]
    customerx.store.records["clients"][1] = {"id": 1, "company_name": "Feito à Mão", "cnpj_cpf": document}
    customerx.store.next_id = 2
    assert main(["sync", full.source_path, "--window", "2026-11-02"]) == 0
    client = customerx.store.records["clients"][1]
    assert client["external_id_client"] == ext and client["company_name"] != "Feito à Mão"
    assert [c for c in customerx.store.records["clients"].values() if c.get("cnpj_cpf") == document] == [
        client
    ]
    assert any(c["client_id"] == 1 for c in customerx.store.records["contacts"].values())
    assert not [w for w in customerx.writes if w["status"] >= 400]
    adoption = [w for w in customerx.writes if w["method"] == "PUT" and "/clients" in w["path"]]
    assert (
        len(adoption) == 1
        and "id=1" in adoption[0]["path"]
        and "external_id_client=" not in adoption[0]["path"]
    )
    writes = len(customerx.writes)
    assert main(["sync", full.source_path, "--window", "2026-11-02"]) == 0
    assert len(customerx.writes) == writes


def _ledger(home: Path, name: str, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(database_path(home, name)), read_only=True) as con:
        return con.execute(sql.replace("{s}", name), params or []).fetchall()


def test_a_refused_record_costs_one_call_per_sync_command_not_one_per_window(
    home, full, ploomes, customerx, monkeypatch
):
    point_at(monkeypatch, ploomes, customerx)
    # the dry run that finds the victim stages the range in one run, as three would
    assert main(["sync", full.source_path, "--window", "2026-11-02..2026-11-04", "--dry-run"]) == 0
    path = Path(full.source_path)  # one window per run: a range of three is three runs of one sync
    path.write_text(path.read_text().replace("sync:\n", "sync:\n  windows_per_run: 1\n"))
    # a contact staged from the first window on, never merged into another: one record throughout
    victim = _ledger(
        home,
        "fullsync",
        "select external_id, email from {s}.stg_contacts where aliases = '' "
        "and window_start = '2026-11-02' order by 1 limit 1",
    )[0]
    customerx.refuse("contacts", lambda body: body.get("email") == victim[1], {"name": ["is invalid"]})

    def attempts() -> int:
        return sum(1 for w in customerx.writes if (w["body"] or {}).get("email") == victim[1])

    assert main(["sync", full.source_path, "--window", "2026-11-02..2026-11-04"]) == 1
    assert attempts() == 1  # three runs, one 422
    outcomes = _ledger(
        home,
        "fullsync",
        "select outcome, http_status, detail from {s}.ledger where external_id = ? "
        "and entity = 'contacts' order by recorded_at",
        [victim[0]],
    )
    assert [o[:2] for o in outcomes] == [("rejected", 422), ("rejected", None), ("rejected", None)]
    assert "refused earlier in this sync" in outcomes[-1][2]
    assert main(["sync", full.source_path, "--window", "2026-11-04"]) == 1
    assert attempts() == 2  # a new sync command tries it once more


def test_records_whose_client_is_not_in_customerx_wait_for_it_instead_of_earning_a_422(
    home, full, ploomes, customerx, monkeypatch
):
    point_at(monkeypatch, ploomes, customerx)
    assert main(["sync", full.source_path, "--window", "2026-11-02", "--dry-run"]) == 0
    client = _ledger(
        home,
        "fullsync",
        "select client_external_id from {s}.stg_contacts group by 1 order by count(*) desc limit 1",
    )[0][0]
    customerx.refuse(
        "clients", lambda body: body.get("external_id_client") == client, {"cnpj_cpf": ["is invalid"]}
    )
    assert main(["sync", full.source_path, "--window", "2026-11-02"]) == 1
    refused_children = [
        w
        for w in customerx.writes
        if w["status"] >= 400 and w["path"].split("?")[0].rstrip("/") != "/api/v1/clients"
    ]
    assert refused_children == []
    waiting = _ledger(
        home,
        "fullsync",
        "select entity, count(*) from {s}.ledger where outcome = 'waiting_for_client' group by 1",
    )
    assert dict(waiting).get("contacts", 0) >= 1
    customerx.refusals.clear()
    assert (
        main(["sync", full.source_path, "--window", "2026-11-02"]) == 0
    )  # the client lands, then its records
    held = [c for c in customerx.store.records["contacts"].values() if c["external_id_client"] == client]
    assert len(held) == dict(waiting)["contacts"]


def test_a_server_without_the_id_parameter_gets_the_numeric_id_in_the_path(
    home, tmp_path, ploomes, customerx, monkeypatch
):
    """`?id=N` is inferred; when the server refuses that form the path form is used instead."""
    path = write_mapping(
        tmp_path,
        "pathid",
        "quality:\n  max_rejected_ratio: 0.9\n",
    )
    text = path.read_text().replace(
        "customerx:\n", "customerx:\n  endpoints:\n    update_client_by_id: {param: client_id}\n", 1
    )
    path.write_text(text)
    point_at(monkeypatch, ploomes, customerx)
    assert main(["sync", str(path), "--window", "2026-11-02", "--dry-run"]) == 0
    ext, document = _ledger(
        home, "pathid", "select external_id, document from {s}.stg_clients where document is not null limit 1"
    )[0]
    customerx.store.records["clients"][1] = {"id": 1, "company_name": "Feito à Mão", "cnpj_cpf": document}
    customerx.store.next_id = 2
    assert main(["sync", str(path), "--window", "2026-11-02"]) == 0
    assert customerx.store.records["clients"][1]["external_id_client"] == ext
    puts = [(w["path"], w["status"]) for w in customerx.writes if w["method"] == "PUT"]
    assert puts == [("/api/v1/clients?client_id=1", 400), ("/api/v1/clients/1", 200)]


def test_a_contact_kept_on_another_client_is_updated_without_asking_to_move_it_again(
    home, full, ploomes, customerx, monkeypatch
):
    """An adopted contact that sits on another client in CustomerX stays there; later updates of
    it must not send the client again (CustomerX answers 422 "cannot be changed")."""
    point_at(monkeypatch, ploomes, customerx)
    assert main(["sync", full.source_path, "--window", "2026-11-02"]) == 0
    ext, client = staged(home, "fullsync", "stg_contacts", "external_id, client_external_id")[0]
    records = customerx.store.records
    contact = next(c for c in records["contacts"].values() if c["external_id_contact"] == ext)
    other = next(c for c in records["clients"].values() if c["external_id_client"] != client)
    contact["client_id"], contact["external_id_client"] = other["id"], other["external_id_client"]
    with duckdb.connect(str(database_path(home, "fullsync"))) as con:
        con.execute("delete from fullsync.crosswalk where entity = 'contacts' and external_id = ?", [ext])
    assert main(["sync", full.source_path, "--window", "2026-11-02"]) == 0  # adopted where it sits

    ploomes.dataset.touch(
        "contacts", int(ext), {"Name": "Nome Trocado"}, when_ms=to_ms(local(2026, 11, 2, 12))
    )
    before = len(customerx.writes)
    assert main(["sync", full.source_path, "--window", "2026-11-02"]) == 0
    [write] = [w for w in customerx.writes[before:] if w["path"].startswith("/api/v1/contacts")]
    assert write["status"] == 200 and "external_id_client" not in write["body"]
    assert contact["name"] == "Nome Trocado" and contact["client_id"] == other["id"]


def test_load_progress_speaks_at_each_quarter_with_the_eta_of_the_rest():
    from ploomes_cx.load.progress import LoadProgress

    lines: list[str] = []

    class Log:
        def info(self, message: str) -> None:
            lines.append(message)

    progress = LoadProgress(total=20_000, requests_per_minute=60, log=Log(), every_seconds=3600)
    for done in range(0, 20_001):
        progress.tick(done, requests=done)  # a first load: one request per record
    assert lines == [  # 15,000 records left at 60 requests/min are 250 min
        "progress: 5,000 of 20,000 records, ETA 4h10m at 60/min",
        "progress: 10,000 of 20,000 records, ETA 2h47m at 60/min",
        "progress: 15,000 of 20,000 records, ETA 1h23m at 60/min",
    ]
    small = LoadProgress(total=50, requests_per_minute=60, log=Log(), every_seconds=0)
    small.tick(25, requests=25)
    assert len(lines) == 3  # a step too small to wait on says nothing
