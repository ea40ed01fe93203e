"""Running it every day: schedules, many mappings, shared API limits, out-of-order backfills."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from ploomes_cx.cli import main
from ploomes_cx.factory import build_integration_defs
from ploomes_cx.live.assets import live_run_config
from ploomes_cx.live.events import EventStore, store_path
from ploomes_cx.mapping import load_mapping
from ploomes_cx.plan import Plan
from ploomes_cx.runtime.duckdb_io import connection, database_path
from ploomes_cx.runtime.pacing import TURN_HELD
from ploomes_cx.sandbox import CustomerXSandbox, PloomesDataset, PloomesSandbox
from ploomes_cx.sandbox.clock import to_ms
from ploomes_cx_tests.conftest import CX_TOKEN, SECRET_KEY, local, point_at, write_mapping
from ploomes_cx_tests.helpers import cx_state, staged


def tick(m_path: Path, when: dt.datetime) -> list[str | None]:
    m = load_mapping(m_path)
    schedule = build_integration_defs(m).resolve_schedule_def(Plan.of(m).schedule)
    result = schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=when))
    return [r.partition_key for r in result.run_requests or []]


def test_daily_schedule_asks_for_the_window_that_just_ended_in_the_mapping_timezone(tmp_path):
    path = write_mapping(tmp_path, "daily")  # America/Sao_Paulo, UTC-3
    m = load_mapping(path)
    schedule = build_integration_defs(m).resolve_schedule_def(Plan.of(m).schedule)
    assert schedule.cron_schedule == "10 0 * * *"
    assert schedule.execution_timezone == "America/Sao_Paulo"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    utc = dt.UTC
    # 00:10 in São Paulo on the 5th is 03:10 UTC: the 4th has ended there.
    assert tick(path, dt.datetime(2026, 11, 5, 3, 10, tzinfo=utc)) == ["2026-11-04"]
    # 02:10 UTC on the 5th is still the 4th in São Paulo: the newest complete window is the 3rd.
    assert tick(path, dt.datetime(2026, 11, 5, 2, 10, tzinfo=utc)) == ["2026-11-03"]


def test_hourly_schedule_follows_a_half_hour_timezone(tmp_path):
    path = tmp_path / "hourly.yaml"
    path.write_text(
        'name: hourly\nsync:\n  cadence: hourly\n  start: "2026-11-01"\n  timezone: Asia/Kolkata\n'
        "  schedule_delay_minutes: 5\n"
    )
    m = load_mapping(path)
    schedule = build_integration_defs(m).resolve_schedule_def(Plan.of(m).schedule)
    assert schedule.cron_schedule == "5 * * * *" and schedule.execution_timezone == "Asia/Kolkata"
    # 10:05 UTC is 15:35 in Kolkata (UTC+5:30): the 14:00-15:00 local window is the newest complete one.
    assert tick(path, dt.datetime(2026, 11, 2, 10, 5, tzinfo=dt.UTC)) == ["2026-11-02-14:00"]
    assert tick(path, dt.datetime(2026, 11, 2, 15, 5, tzinfo=ZoneInfo("Asia/Kolkata"))) == [
        "2026-11-02-14:00"
    ]


def _load_freshness(path: Path) -> list:
    m = load_mapping(path)
    defs = build_integration_defs(m)
    policies = []
    for entity in ("clients", "contacts", "contracts", "timeline"):
        key = dg.AssetKey([m.name, f"load_{entity}"])
        policies += [s.freshness_policy for s in defs.resolve_assets_def(key).specs if s.key == key]
    raw = dg.AssetKey([m.name, "raw_persons"])
    assert all(
        s.freshness_policy is None for s in defs.resolve_assets_def(raw).specs
    )  # windows are the schedule's
    return policies


def test_load_assets_are_late_when_a_window_has_not_landed_a_grace_period_after_its_tick(tmp_path):
    daily = _load_freshness(write_mapping(tmp_path, "daily"))
    assert len(daily) == 4 and len(set(daily)) == 1
    policy = daily[0]
    # the tick is 00:10 in São Paulo; with the default hour of grace the deadline is 01:10 there
    assert (policy.deadline_cron, policy.timezone) == ("10 1 * * *", "America/Sao_Paulo")
    assert policy.lower_bound_delta == dt.timedelta(days=1)
    path = tmp_path / "hourly.yaml"
    path.write_text(
        "name: hourly\nsync:\n  cadence: hourly\n  timezone: Asia/Kolkata\n  schedule_delay_minutes: 5\n"
        "  freshness_grace_minutes: 20\n"
    )
    hourly = _load_freshness(path)[0]
    assert (hourly.deadline_cron, hourly.lower_bound_delta) == ("25 * * * *", dt.timedelta(hours=1))
    path.write_text(path.read_text().replace("20", "90"))  # a grace beyond the hour wraps round it
    assert _load_freshness(path)[0].deadline_cron == "35 * * * *"


def test_two_mapping_files_give_disjoint_assets_checks_jobs_schedules_and_resources(
    tmp_path, monkeypatch, home
):
    write_mapping(tmp_path, "north")
    write_mapping(tmp_path, "south", "timeline: []\n")
    monkeypatch.setenv("PLOOMES_CX_MAPPINGS", str(tmp_path))
    from ploomes_cx.definitions import defs

    loaded = defs()
    per_mapping = {}
    for name in ("north", "south"):
        only = build_integration_defs(load_mapping(tmp_path / f"{name}.yaml"))
        per_mapping[name] = {
            "assets": set(only.resolve_all_asset_keys()),
            "checks": set(only.resolve_asset_graph().asset_check_keys),
            "jobs": {j.name for j in only.jobs or []},
            "schedules": {s.name for s in only.schedules or []},
            "resources": set(only.resources or {}),
        }
    north, south = per_mapping["north"], per_mapping["south"]
    for kind in north:
        assert north[kind] and south[kind], kind
        assert not north[kind] & south[kind], kind  # nothing shared
    assert set(loaded.resolve_all_asset_keys()) == north["assets"] | south["assets"]
    assert set(loaded.resolve_asset_graph().asset_check_keys) == north["checks"] | south["checks"]
    assert {s.name for s in loaded.schedules} == {
        f"{n}_{s}" for n in ("north", "south") for s in ("sync_schedule", "reconcile_weekly")
    }
    assert all(s.default_status == dg.DefaultScheduleStatus.STOPPED for s in loaded.schedules)
    assert all(k.path[0] == "north" for k in north["assets"])
    assert all(c.asset_key.path[0] == "south" for c in south["checks"])
    # what the UI runs for assets picked on the graph, outside any job: in-process, as the jobs
    # (Dagster's default is a process per step, whose loop spins while a step waits for its pool)
    executors = {j.name: j.executor_def for j in loaded.resolve_all_job_defs()}
    assert "__ASSET_JOB" in executors
    assert all(e is dg.in_process_executor for e in executors.values()), executors


def test_a_backfill_run_newest_first_ends_in_the_same_customerx_state_as_in_order(tmp_path, monkeypatch):
    """Windows may run in any order (a backfill, a retry): the newest version of a record wins."""

    def account(tag: str) -> tuple[PloomesSandbox, CustomerXSandbox, Path]:
        dataset = PloomesDataset(persons=150, seed=5)
        ploomes = PloomesSandbox(dataset, user_key=SECRET_KEY, requests_per_minute=60_000, burst=1000).start()
        cx = CustomerXSandbox(token=CX_TOKEN, requests_per_minute=60_000, burst=1000).start()
        # One organization renamed twice: the newest name (window 4) must be what CustomerX keeps.
        first = sorted(dataset.expected_ids("organizations", local(2026, 11, 2), local(2026, 11, 3)))[0]
        dataset.touch("contacts", first, {"Name": "Nome Novo Ltda"}, when_ms=to_ms(local(2026, 11, 4, 9)))
        monkeypatch.setenv("PLOOMES_CX_HOME", str(tmp_path / tag))
        return ploomes, cx, write_mapping(tmp_path, tag, "quality:\n  max_rejected_ratio: 0.9\n")

    states = {}
    for tag, windows in (
        ("inorder", ["2026-11-02..2026-11-04"]),
        ("reverse", ["2026-11-04", "2026-11-03", "2026-11-02"]),
    ):
        ploomes, cx, path = account(tag)
        try:
            point_at(monkeypatch, ploomes, cx)
            for window in windows:
                assert main(["sync", str(path), "--window", window]) == 0
            states[tag] = cx_state(cx)
            names = {c.get("trading_name") for c in cx.store.records["clients"].values()}
            assert "Nome Novo Ltda" in names
        finally:
            ploomes.stop()
            cx.stop()
    # A contact's client cannot change in CustomerX (customerx-api.md §8.2). When the order in
    # which records arrive makes a person's twin the survivor (and its CustomerX contact adopted),
    # and the twins were entered at two companies, the contact stays on the client it was created
    # on, and that run's ledger says so: the one difference allowed.
    stayed: dict[str, str] = {}
    for tag in states:
        with duckdb.connect(str(database_path(tmp_path / tag, tag)), read_only=True) as con:
            here = {
                r[0]: r[1].rsplit(" ", 1)[-1]
                for r in con.execute(
                    f"select external_id, detail from {tag}.ledger where detail like '%client changed in Ploomes%'"
                ).fetchall()
            }
        clients = {c[0] for c in states[tag]["clients"]}
        for contact, client, _ in states[tag]["contacts"]:
            if contact in here:
                assert client in clients  # on a client CustomerX holds (maybe since renamed by a merge)
        stayed |= here
    assert len(stayed) <= len(states["inorder"]["contacts"]) // 20  # twins at two companies are rare
    for tag in states:
        states[tag]["contacts"] = [c for c in states[tag]["contacts"] if c[0] not in stayed]
    assert states["reverse"] == states["inorder"]
    assert len(staged(tmp_path / "reverse", "reverse", "stg_clients")) == len(states["reverse"]["clients"])


def test_parallel_syncs_on_one_key_share_its_limit_and_never_fail_on_429(tmp_path):
    """Two mappings on the same Ploomes key and CustomerX token, synced at the same time.

    The sandboxes allow exactly the rate the mappings ask for: if the two runs did not share one
    budget (pools across runs, pacing across processes), together they would go over it.
    """
    rpm = 1200
    ploomes = PloomesSandbox(
        PloomesDataset(persons=120, seed=3), user_key=SECRET_KEY, requests_per_minute=rpm, burst=3
    ).start()
    cx = CustomerXSandbox(token=CX_TOKEN, requests_per_minute=rpm, burst=3).start()
    paths = []
    # Two integrations of one account: their contacts differ (persons / the organizations' own), so
    # neither fights the other over a contact's client or e-mail, which CustomerX would refuse.
    for name, contacts in (("alpha", "persons"), ("beta", "organizations")):
        extra = f"quality:\n  max_rejected_ratio: 0.9\ncontacts:\n  source: {contacts}\n"
        path = write_mapping(tmp_path, name, extra, customerx_rpm=rpm)
        path.write_text(path.read_text().replace("requests_per_minute: 6000", f"requests_per_minute: {rpm}"))
        paths.append(path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLOOMES", "CUSTOMERX", "DAGSTER"))}
    env |= {
        "PLOOMES_CX_HOME": str(tmp_path / "state"),  # one deployment: one instance, one pacing folder
        "PLOOMES_BASE_URL": ploomes.url,
        "PLOOMES_USER_KEY": SECRET_KEY,
        "CUSTOMERX_BASE_URL": cx.url,
        "CUSTOMERX_TOKEN": CX_TOKEN,
    }
    cli = str(Path(sys.executable).parent / "ploomes-cx")
    try:
        # The first sync creates the instance's database, so the two processes below do not race for it.
        subprocess.run(
            [cli, "sync", str(paths[0]), "--window", "2026-11-01"],
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
        procs = [
            subprocess.Popen(
                [cli, "sync", str(p), "--window", "2026-11-02..2026-11-04"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for p in paths
        ]
        outputs = [p.communicate(timeout=600) for p in procs]
        for proc, (out, err) in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, out + err
        assert ploomes.rate_limited == 0
        assert cx.rate_limited == 0
        assert len(cx.successful_writes()) > 100
    finally:
        ploomes.stop()
        cx.stop()

    instance = dg.DagsterInstance.from_config(str(tmp_path / "state" / "dagster"))
    spans: dict[str, list[tuple[float, float, str]]] = {}  # pool -> (start, end, mapping)
    for run in instance.get_runs():
        if run.tags.get("dagster/partition") == "2026-11-01":
            continue
        for record in instance.all_logs(run.run_id):
            step = record.step_key or ""
            pool = "ploomes" if "raw_" in step else "customerx" if "load_" in step else None
            message = record.user_message if record.dagster_event is None else ""
            if pool is None or TURN_HELD not in message:
                continue
            # "held the account of $X for 0.412345 s from 2026-12-07T23:12:01.123456+00:00"
            held, taken = re.fullmatch(r".* for (\S+) s from (\S+)", message).groups()
            start = dt.datetime.fromisoformat(taken).timestamp()
            spans.setdefault(pool, []).append((start, start + float(held), run.tags["ploomes_cx/mapping"]))
    instance.dispose()
    # API steps on one credential take turns: the pool (limit 1) and, since Dagster's slot claim
    # on a SQLite instance is not atomic across processes (seen once: two steps 4 ms apart), the
    # account's step lock (`pacing.exclusive`). With neither (pool raised to 100, lock removed)
    # the steps overlapped about a third of their time and this failed. A span starts when the
    # step holds the lock and ends when it gives it back, not at STEP_START / STEP_SUCCESS: a
    # step's start includes its wait for the lock and its success comes after its output is
    # written, and either made two steps look concurrent (seen twice in clean-clone runs).
    for pool, items in spans.items():
        items.sort()
        overlaps = [(a, b) for a, b in itertools.pairwise(items) if b[0] < a[1] and a[2] != b[2]]
        assert not overlaps, pool
    everything = [item for items in spans.values() for item in items]
    alpha = [item for item in everything if item[2] == "alpha"]
    beta = [item for item in everything if item[2] == "beta"]
    assert min(s for s, _, _ in beta) < max(e for _, e, _ in alpha)  # the two syncs did run together
    assert min(s for s, _, _ in alpha) < max(e for _, e, _ in beta)


def test_every_asset_explains_itself_in_the_ui(home, mapping_with_timeline, ploomes, customerx, monkeypatch):
    """Description, owners, group, kinds and column schema up front; row count and preview once run."""
    m = mapping_with_timeline
    graph = build_integration_defs(m).resolve_asset_graph()
    keys = sorted(graph.get_all_asset_keys())
    for key in keys:
        node = graph.get(key)
        assert node.description and len(node.description) > 40, key
        assert node.owners == ["team:ploomes-cx"], key
        assert node.group_name == f"{m.name}_{node.tags['ploomes_cx/layer']}", key
        assert node.kinds and "duckdb" in node.kinds, key
        assert node.tags["ploomes_cx/mapping"] == m.name
        schema = node.metadata["dagster/column_schema"]
        assert schema.columns and all(c.description for c in schema.columns), key

    point_at(monkeypatch, ploomes, customerx)
    assert main(["sync", m.source_path, "--window", "2026-11-03"]) == 0
    assert main(["reconcile", m.source_path]) == 0
    instance = dg.DagsterInstance.get()
    with EventStore(store_path(home, m.name)) as store:  # one webhook event, as `listen` stores it
        record = ploomes.dataset.render("contacts", 0, with_offset=False)
        seq, _ = store.add({"Action": "Update", "Entity": "Contacts", "New": record, "Old": record})
    job = build_integration_defs(m).resolve_job_def(f"{m.name}_live")
    assert job.execute_in_process(run_config=live_run_config(m, [seq], "test"), instance=instance).success
    for key in keys:
        event = instance.get_latest_materialization_event(key)
        assert event is not None, key
        metadata = event.asset_materialization.metadata
        partitioned = graph.get(key).is_partitioned
        count = metadata.get("dagster/partition_row_count" if partitioned else "dagster/row_count")
        assert count is not None and count.value == _rows_held(home, m.name, key.path[-1]), key
        assert "preview" in metadata, key
    rejected = instance.get_latest_materialization_event(dg.AssetKey([m.name, "rejected"]))
    assert "client_not_found" in rejected.asset_materialization.metadata["preview"].value


def test_the_local_and_the_production_instance_configs_are_valid_and_share_their_limits(
    tmp_path, monkeypatch
):
    import yaml

    # no public API validates a dagster.yaml against the instance schema; this is what the instance uses
    from dagster._core.instance.config import dagster_instance_config

    from ploomes_cx.runtime.state import dagster_yaml

    for name in ("DAGSTER_PG_HOST", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"):
        monkeypatch.setenv(name, "x")
    local_dir = tmp_path / "local"
    local_dir.mkdir()
    (local_dir / "dagster.yaml").write_text(dagster_yaml(local_dir))
    production_dir = Path(__file__).resolve().parent.parent / "deploy"
    for folder in (local_dir, production_dir):
        config, _ = dagster_instance_config(str(folder))  # raises on any unknown or misspelt key
        assert config["concurrency"]["pools"]["default_limit"] == 1
    production = yaml.safe_load((production_dir / "dagster.yaml").read_text())
    local = yaml.safe_load(dagster_yaml(local_dir))
    for section in ("concurrency", "run_retries", "freshness"):
        assert production[section] == local[section], section
    assert local["run_retries"]["retry_on_asset_or_op_failure"] is False  # crashed runs only
    assert "postgres" in production["storage"]
    assert local["storage"]["custom"]["config"]["base_dir"] == str(local_dir.resolve())  # not $DAGSTER_HOME


def test_an_instance_folder_written_by_an_older_version_gets_the_new_settings(tmp_path, monkeypatch):
    from ploomes_cx.runtime.state import DAGSTER_YAML, dagster_yaml, ensure_dagster_home

    monkeypatch.setenv("PLOOMES_CX_HOME", str(tmp_path))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    config = tmp_path / "dagster" / "dagster.yaml"
    config.parent.mkdir()
    config.write_text(DAGSTER_YAML.splitlines()[0] + "\ntelemetry:\n  enabled: false\n")
    ensure_dagster_home()
    assert config.read_text() == dagster_yaml(config.parent)
    config.write_text("# my own instance\ntelemetry:\n  enabled: true\n")  # a user's file is left alone
    ensure_dagster_home()
    assert config.read_text().startswith("# my own instance")


def test_a_broken_instance_config_is_a_clear_error_not_a_traceback(
    tmp_path, mapping, sandbox_environ, monkeypatch, capsys
):
    instance_dir = tmp_path / "instance"
    instance_dir.mkdir()
    (instance_dir / "dagster.yaml").write_text("storage:\n  sqlite:\n    base_dir: /x\n  nonsense: 1\n")
    monkeypatch.setenv("DAGSTER_HOME", str(instance_dir))
    monkeypatch.setenv("PLOOMES_CX_HOME", str(tmp_path / "state"))
    assert main(["sync", mapping.source_path, "--window", "2026-11-02"]) == 3
    err = capsys.readouterr().err
    assert f"DAGSTER_HOME={instance_dir}" in err and "cannot be loaded" in err
    assert "Traceback" not in err


@pytest.mark.persons(150)  # the wait for a pool slot: the account's size proves nothing (issue 29)
def test_a_sync_waits_for_a_pool_slot_another_run_holds_and_says_so(
    home, mapping, sandbox_environ, capsys, monkeypatch
):
    """Another run (here: a claim made by hand) holds the Ploomes key's only slot for 4 s; the
    waiting run sleeps until each re-check of its claim (runtime/claim_wait.py), it does not spin."""
    import threading

    from dagster._core.execution.plan.active import ActiveExecution

    from ploomes_cx.runtime.state import ensure_dagster_home

    turns: list[float] = []  # when the in-process executor's loop asked for its next step
    next_step = ActiveExecution.get_next_step
    monkeypatch.setattr(
        ActiveExecution, "get_next_step", lambda self: turns.append(time.monotonic()) or next_step(self)
    )
    ensure_dagster_home()
    instance = dg.DagsterInstance.get()
    pool = f"ploomes_api__{mapping.ploomes.user_key_env.lower()}"
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default(pool)
    assert storage.claim_concurrency_slot(pool, "another-run", "its_step").is_claimed
    release = threading.Timer(4.0, storage.free_concurrency_slots_for_run, args=["another-run"])
    release.start()
    started = time.monotonic()
    try:
        assert main(["sync", mapping.source_path, "--window", "2026-11-02"]) == 0
    finally:
        release.cancel()
        instance.dispose()
    assert time.monotonic() - started >= 4.0  # it really waited
    # one turn per step and per claim check (1 s backoff, growing): tens; spinning, it took
    # hundreds of thousands in the 4 s
    assert len(turns) < 200, len(turns)
    out = capsys.readouterr().out
    assert f"waiting, step blocked by limit for pool {pool}" in out
    assert out.index("waiting, step blocked") < out.index("] raw_fields: ")


def test_the_housekeeping_sensor_fails_dead_cli_runs_and_frees_their_slots(home):
    import socket

    from ploomes_cx.runtime.housekeeping import HOST_TAG, PID_TAG, reclaim_abandoned_cli_runs
    from ploomes_cx.runtime.state import ensure_dagster_home

    ensure_dagster_home()
    instance = dg.DagsterInstance.get()
    dead = subprocess.Popen(["true"])
    dead.wait()
    owners = {"dead": dead.pid, "alive": os.getpid()}
    for name, pid in owners.items():
        tags = {PID_TAG: str(pid), HOST_TAG: socket.gethostname()}
        instance.add_run(
            dg.DagsterRun(
                job_name="x_sync", run_id=f"{name}-run", status=dg.DagsterRunStatus.STARTED, tags=tags
            )
        )
    pool = "ploomes_api__ploomes_user_key"
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default(pool)
    assert storage.claim_concurrency_slot(pool, "dead-run", "raw_persons").is_claimed
    assert not storage.claim_concurrency_slot(pool, "another-run", "raw_deals").is_claimed  # limit 1: taken

    result = reclaim_abandoned_cli_runs(dg.build_sensor_context(instance=instance))
    assert "1 abandoned" in str(result.skip_message)
    assert instance.get_run_by_id("dead-run").status == dg.DagsterRunStatus.FAILURE
    assert (
        instance.get_run_by_id("alive-run").status == dg.DagsterRunStatus.STARTED
    )  # a live process is left alone
    storage.free_concurrency_slot_for_step("another-run", "raw_deals")  # drop its pending claim
    assert storage.claim_concurrency_slot(pool, "another-run", "raw_deals").is_claimed
    instance.dispose()


def _rows_held(home: Path, name: str, table: str) -> int:
    """What an asset's row count must say: its rows in the window, the table, or its crosswalk rows."""
    with duckdb.connect(str(database_path(home, name)), read_only=True) as con:
        if table in ("reconcile", "live_deletes"):
            sql, params = f"select count(*) from {name}.ploomes_gone", []
        elif table == "raw_live":
            sql, params = f"select count(*) from {name}.raw_live", []
        elif table.startswith("load_"):
            sql, params = f"select count(*) from {name}.crosswalk where entity = ?", [table[5:]]
        elif table.startswith("raw_"):
            sql, params = f"select count(*) from {name}.{table} where window_start = '2026-11-03'", []
        else:
            sql, params = f"select count(*) from {name}.{table}", []
        return int(con.execute(sql, params).fetchall()[0][0])


def hold_lock_in_another_process(
    lock: Path, seconds: float, release_on_stdin: bool = False
) -> subprocess.Popen:
    """A second process holding `lock` for `seconds` (or, with `release_on_stdin`, until a line comes
    on its stdin); returns once it holds it."""
    wait = "sys.stdin.readline()" if release_on_stdin else f"time.sleep({seconds})"
    script = (
        "import sys, time; from pathlib import Path; from ploomes_cx.runtime.pacing import exclusive\n"
        f"with exclusive(Path(sys.argv[1])):\n    print('held', flush=True); {wait}"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(lock)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_the_account_step_lock_makes_a_second_process_wait_and_says_so(tmp_path):
    from ploomes_cx.runtime.pacing import exclusive

    lock = tmp_path / "pacing" / "ploomes-abc.step"
    holder = hold_lock_in_another_process(lock, seconds=1.5)
    waited: list[float] = []
    started = time.monotonic()
    with exclusive(lock, on_wait=lambda: waited.append(time.monotonic())):
        got_it = time.monotonic()
    holder.wait(timeout=30)
    assert len(waited) == 1 and got_it - started > 1.0  # blocked until the other process let go
    with exclusive(lock, on_wait=lambda: waited.append(0.0)):
        pass
    assert len(waited) == 1  # free: no wait, no message


@pytest.mark.persons(150)  # the wait for the lock: the account's size proves nothing (issue 29)
def test_a_sync_waits_while_another_process_holds_the_account_lock_and_says_so(
    home, mapping, sandbox_environ, capsys, monkeypatch
):
    """The holder lets go only once the sync has said it waits: a fixed hold raced the sync's own
    start on a busy machine (the sync reached the lock after the holder had let go)."""
    from ploomes_cx.runtime.pacing import account_step_lock

    lock = account_step_lock(
        home, "ploomes", sandbox_environ["PLOOMES_BASE_URL"], mapping.ploomes.user_key_env
    )
    holder = hold_lock_in_another_process(lock, seconds=120, release_on_stdin=True)
    said = threading.Event()

    class Watch(io.TextIOBase):
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def write(self, text: str) -> int:
            if "waiting: another step is calling the account" in text:
                said.set()
            return self.inner.write(text)

        def flush(self) -> None:
            self.inner.flush()

    monkeypatch.setattr(sys, "stdout", Watch(sys.stdout))
    release = threading.Thread(target=lambda: (said.wait(120), holder.communicate("go\n", timeout=30)))
    release.start()
    assert main(["sync", mapping.source_path, "--window", "2026-11-02"]) == 0
    release.join(timeout=60)
    out = capsys.readouterr().out
    assert said.is_set()
    assert f"waiting: another step is calling the account of ${mapping.ploomes.user_key_env}" in out
    assert out.index("waiting: another step") < out.index("] raw_fields: ")


@pytest.mark.persons(150)  # the wait for the other sync: the account's size proves nothing (issue 29)
def test_a_second_sync_of_one_mapping_waits_for_the_first_and_says_so(home, mapping, sandbox_environ, capsys):
    """In-process runs bypass the run queue's one-run-per-mapping limit; the CLI takes turns itself."""
    lock = home / "locks" / f"sync-{mapping.name}.lock"
    holder = hold_lock_in_another_process(lock, seconds=3)  # what a running `sync` holds
    started = time.time()
    assert main(["sync", mapping.source_path, "--window", "2026-11-02"]) == 0
    holder.wait(timeout=30)
    err = capsys.readouterr().err
    assert f"another ploomes-cx sync of mapping {mapping.name} is running; waiting for it to finish" in err
    instance = dg.DagsterInstance.get()
    run = instance.get_runs(limit=1)[0]
    assert instance.get_run_stats(run.run_id).start_time > started + 2.5  # ran only after the holder let go


def test_a_step_that_fails_inside_its_duckdb_connection_leaves_the_file_closed(tmp_path):
    """dagster-duckdb closes a connection only when the step succeeds; a failed reconcile once left
    its file open, and the next read-only connection in that process was refused."""
    path = tmp_path / "w.duckdb"
    with (
        pytest.raises(RuntimeError, match="step failed"),
        connection(DuckDBResource(database=str(path))) as con,
    ):
        con.execute("create table t as select 1 as a")
        raise RuntimeError("step failed")
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("select a from t").fetchall() == [(1,)]
