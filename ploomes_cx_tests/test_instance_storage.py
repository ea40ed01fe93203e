"""The local instance's SQLite storage keeps its engines and changes nothing else (issue 29).

It must write what Dagster's own SQLite storage reads, keep live run views working in another
process (the webserver watches each run's file), and survive a fork.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

import dagster as dg
import pytest
from alembic.script import ScriptDirectory
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sqlite import sqlite_event_log
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from ploomes_cx.cli import main
from ploomes_cx.runtime import instance_storage
from ploomes_cx.runtime.instance_storage import KEPT_RUN_ENGINES, KeptEnginesSqliteEventLogStorage
from ploomes_cx_tests.conftest import point_at, write_mapping


def _entry(run_id: str, message: str = "hello") -> EventLogEntry:
    return EventLogEntry(
        error_info=None, level=20, user_message=message, run_id=run_id, timestamp=time.time()
    )


@pytest.mark.persons(60)
def test_a_sync_writes_through_the_kept_engines_and_dagsters_own_storage_reads_it_all(
    home, tmp_path, ploomes, customerx, monkeypatch
):
    point_at(monkeypatch, ploomes, customerx)
    path = write_mapping(tmp_path, "acme", "quality:\n  max_rejected_ratio: 0.9\n")
    assert main(["sync", str(path), "--window", "2026-11-02"]) == 0

    # opened by its folder, with DAGSTER_HOME naming another instance (as a test or a script may)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "another"))
    with dg.DagsterInstance.from_config(str(home / "dagster")) as ours:
        assert isinstance(ours.event_log_storage, KeptEnginesSqliteEventLogStorage)
        (run,) = ours.get_runs()
        ours_events = [e.dagster_event_type for e in ours.all_logs(run.run_id)]
        ours_keys = ours.get_asset_keys()

    # Dagster's default storage on the same folder, as a state folder written before this change
    (home / "dagster" / "plain.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(str(home / "dagster"), config_filename="plain.yaml") as plain:
        assert type(plain.event_log_storage) is SqliteEventLogStorage
        assert [r.run_id for r in plain.get_runs()] == [run.run_id]
        assert [e.dagster_event_type for e in plain.all_logs(run.run_id)] == ours_events
        assert set(plain.get_asset_keys()) == set(ours_keys)
        assert dg.DagsterEventType.RUN_SUCCESS in ours_events


def test_one_engine_per_shard_and_only_the_last_runs_keep_theirs(tmp_path, monkeypatch):
    made: list[str] = []
    real = instance_storage.create_engine

    def counting(url: str, **kwargs: object):
        made.append(url)
        return real(url, **kwargs)

    storage = KeptEnginesSqliteEventLogStorage(str(tmp_path))
    monkeypatch.setattr(instance_storage, "create_engine", counting)
    for _ in range(200):
        storage.store_event(_entry("run-a"))
    assert len(storage.get_logs_for_run("run-a")) == 200
    # one engine for 200 events (the empty run file, made once per process, has its own folder)
    assert [url for url in made if str(tmp_path) in url] == [storage.conn_string_for_shard("run-a")]

    for i in range(KEPT_RUN_ENGINES + 4):
        storage.store_event(_entry(f"run-{i}"))
    kept = [shard for shard in storage.kept_engines() if shard != "index"]
    assert kept == [f"run-{i}" for i in range(4, KEPT_RUN_ENGINES + 4)]
    storage.store_event(_entry("run-a"))  # a dropped run's engine is made again and works
    assert len(storage.get_logs_for_run("run-a")) == 201
    storage.dispose()
    assert storage.kept_engines() == []


def _file_shape(path: Path) -> tuple[object, ...]:
    with closing(sqlite3.connect(path)) as db:
        return (
            sorted(db.execute("SELECT type, name, sql FROM sqlite_master").fetchall()),
            db.execute("PRAGMA journal_mode").fetchall(),
            db.execute("SELECT version_num FROM alembic_version").fetchall(),
            db.execute("SELECT count(*) FROM event_logs").fetchall(),
        )


def test_a_new_runs_file_is_dagsters_own_without_reading_the_migrations_again(tmp_path, monkeypatch):
    ours = KeptEnginesSqliteEventLogStorage(str(tmp_path / "ours"))
    dagsters = SqliteEventLogStorage(str(tmp_path / "dagsters"))
    ours.store_event(_entry("first"))  # the first run of a process may make the empty file
    stamps: list[object] = []
    real_stamp = sqlite_event_log.stamp_alembic_rev
    monkeypatch.setattr(
        sqlite_event_log, "stamp_alembic_rev", lambda *a, **k: stamps.append(a) or real_stamp(*a, **k)
    )
    for run in ("run-1", "run-2", "run-3"):
        ours.store_event(_entry(run))
    assert stamps == []  # Dagster stamps each new file: two reads of every migration script
    dagsters.store_event(_entry("run-1"))
    assert len(stamps) == 1
    ours.dispose()
    dagsters.dispose()
    assert _file_shape(tmp_path / "ours" / "run-1.db") == _file_shape(tmp_path / "dagsters" / "run-1.db")
    assert _file_shape(tmp_path / "ours" / "run-1.db")[1:3] == ([("wal",)], [dagsters.alembic_version()[1:]])
    assert sorted(p.name for p in (tmp_path / "ours").iterdir()) == [
        "first.db",
        "index.db",
        "run-1.db",
        "run-2.db",
        "run-3.db",
    ]


def test_a_run_file_another_process_made_first_is_kept_and_written_to(tmp_path):
    SqliteEventLogStorage(str(tmp_path)).store_event(_entry("shared", "from the webserver"))
    ours = KeptEnginesSqliteEventLogStorage(str(tmp_path))
    ours.store_event(_entry("shared", "from the run"))
    assert [e.user_message for e in ours.get_logs_for_run("shared")] == ["from the webserver", "from the run"]
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".part"]
    ours.dispose()


def test_which_tables_the_index_holds_is_asked_once(tmp_path, monkeypatch):
    storage = KeptEnginesSqliteEventLogStorage(str(tmp_path))
    made: list[str] = []
    real = sqlite_event_log.create_engine
    monkeypatch.setattr(
        sqlite_event_log, "create_engine", lambda url, **k: made.append(url) or real(url, **k)
    )
    assert all(storage.supports_asset_checks for _ in range(5))
    assert storage.has_table("event_logs") and not storage.has_table("no_such_table")
    assert not storage.has_table("no_such_table")  # a missing table is asked again: a migration may add it
    assert len(made) == 4


def _instance_folder(folder: Path, ours: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    storage = (
        "storage:\n  custom:\n    module: ploomes_cx.runtime.instance_storage\n"
        f"    class: KeptEnginesSqliteStorage\n    config:\n      base_dir: {folder}\n"
        if ours
        else f"storage:\n  sqlite:\n    base_dir: {folder}\n"
    )
    (folder / "dagster.yaml").write_text(storage + "telemetry:\n  enabled: false\n")
    return folder


def _migration_reads(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every read of Dagster's alembic migration scripts, from now on."""
    reads: list[object] = []
    real = ScriptDirectory.from_config.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(
        ScriptDirectory,
        "from_config",
        classmethod(lambda cls, config: reads.append(config) or real(cls, config)),
    )
    return reads


def _database_shape(path: Path) -> tuple[object, ...]:
    with closing(sqlite3.connect(path)) as db:
        tables = [r[0] for r in db.execute("select name from sqlite_master where type = 'table'")]
        return (
            sorted(db.execute("select type, name, sql from sqlite_master").fetchall()),
            db.execute("pragma journal_mode").fetchall(),
            db.execute("select version_num from alembic_version").fetchall(),
            sorted(db.execute("select name from secondary_indexes").fetchall()),
            {
                t: db.execute(f'select count(*) from "{t}"').fetchall()
                for t in tables
                if t != "secondary_indexes"
            },
        )


def test_a_new_state_folder_gets_dagsters_own_databases_without_reading_the_migrations(tmp_path, monkeypatch):
    with dg.DagsterInstance.from_config(str(_instance_folder(tmp_path / "first"))) as instance:
        instance.event_log_storage.store_event(_entry("a-run"))  # the first new folder and run
        # of a process may make the empty databases
    reads = _migration_reads(monkeypatch)
    with dg.DagsterInstance.from_config(str(_instance_folder(tmp_path / "ours"))) as instance:
        instance.event_log_storage.store_event(_entry("a-run"))
        assert instance.get_runs() == [] and instance.all_instigator_state() == []
    assert reads == []  # Dagster's path reads them three times, once per database
    with dg.DagsterInstance.from_config(str(_instance_folder(tmp_path / "dagsters", ours=False))):
        pass
    assert len(reads) >= 3
    for name in ("history/runs.db", "schedules/schedules.db", "history/runs/index.db"):
        assert _database_shape(tmp_path / "ours" / name) == _database_shape(tmp_path / "dagsters" / name), (
            name
        )
        # readable by a webserver or daemon of another user, as Dagster's own are
        mode = (tmp_path / "ours" / name).stat().st_mode & 0o777
        assert mode == (tmp_path / "dagsters" / name).stat().st_mode & 0o777, name
    assert not list((tmp_path / "ours").rglob("*.part"))


def test_a_state_folder_at_the_newest_revision_opens_without_reading_the_migrations(tmp_path, monkeypatch):
    _instance_folder(tmp_path)
    reads = _migration_reads(monkeypatch)

    def open_and_use() -> int:
        reads.clear()
        with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
            instance.event_log_storage.store_event(_entry("a-run"))
            assert instance.get_runs() == [] and instance.all_instigator_state() == []
        return len(reads)

    open_and_use()  # a new folder (the test above)
    assert open_and_use() == 0  # at the newest revision: opened as it is
    with closing(sqlite3.connect(tmp_path / "history" / "runs.db")) as db, db:
        db.execute("update alembic_version set version_num = 'an-older-one'")
    assert open_and_use() == 1  # any other revision: Dagster's own path reads the migrations
    with closing(sqlite3.connect(tmp_path / "history" / "runs.db")) as db:
        assert db.execute("select version_num from alembic_version").fetchall() == [("an-older-one",)]


def test_another_process_watching_a_run_sees_each_event_as_it_is_stored(tmp_path):
    """The webserver follows a run by watching `<run_id>.db`; the write-ahead log is folded into
    it only when the writer's last connection closes, so run shards must not stay open."""
    writer = KeptEnginesSqliteEventLogStorage(str(tmp_path))
    writer.store_event(_entry("watched", "first"))
    watcher = SqliteEventLogStorage(str(tmp_path))
    seen: list[str] = []
    arrived = threading.Event()

    def on_event(entry: EventLogEntry, _cursor: str) -> None:
        seen.append(entry.user_message)
        if entry.user_message == "third":
            arrived.set()

    watcher.watch("watched", None, on_event)
    try:
        time.sleep(0.5)  # the observer's thread starts watching
        writer.store_event(_entry("watched", "second"))
        writer.store_event(_entry("watched", "third"))
        assert arrived.wait(10), f"the watcher saw only {seen}"
        assert seen[-2:] == ["second", "third"]
    finally:
        watcher.end_watch("watched", on_event)
        watcher.dispose()
        writer.dispose()


def _store_in_child(storage: KeptEnginesSqliteEventLogStorage, inherited: int, answer) -> None:
    storage.store_event(_entry("forked", "from the child"))
    storage.get_event_records(dg.EventRecordsFilter(dg.DagsterEventType.ASSET_MATERIALIZATION))
    answer.put(id(storage.engine_of("index")) != inherited)


def test_a_forked_child_makes_its_own_engines_and_the_parent_keeps_working(tmp_path):
    """A SQLite connection must not be used on both sides of a fork: the child opens its own."""
    storage = KeptEnginesSqliteEventLogStorage(str(tmp_path))
    storage.store_event(_entry("forked", "from the parent"))
    storage.get_event_records(dg.EventRecordsFilter(dg.DagsterEventType.ASSET_MATERIALIZATION))
    context = multiprocessing.get_context("fork")
    answer = context.Queue()
    inherited = id(storage.engine_of("index"))
    child = context.Process(target=_store_in_child, args=(storage, inherited, answer))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert answer.get(timeout=5) is True  # the child's index engine is a new one
    assert id(storage.engine_of("index")) == inherited  # the parent's is kept
    storage.store_event(_entry("forked", "from the parent again"))
    messages = [e.user_message for e in storage.get_logs_for_run("forked")]
    assert messages == ["from the parent", "from the child", "from the parent again"]
    storage.dispose()


def test_a_state_folder_moved_elsewhere_gets_its_new_place_in_dagster_yaml(tmp_path, monkeypatch):
    """The storage names its folder in dagster.yaml; a moved state folder must not keep writing
    to (or reading from) where it used to be."""
    from ploomes_cx.runtime.state import dagster_yaml, ensure_dagster_home

    monkeypatch.setenv("PLOOMES_CX_HOME", str(tmp_path / "moved"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    folder = tmp_path / "moved" / "dagster"
    folder.mkdir(parents=True)
    (folder / "dagster.yaml").write_text(dagster_yaml(tmp_path / "before" / "dagster"))
    ensure_dagster_home()
    assert (folder / "dagster.yaml").read_text() == dagster_yaml(folder)
    assert str(tmp_path / "before") not in (folder / "dagster.yaml").read_text()
