"""The local Dagster instance's SQLite storage, with its database engines kept for the process.

Dagster's SQLite event log builds a new SQLAlchemy engine for every event it stores, and another
for the cross-run index of every asset or check event, and a run stores 150-190 events whatever
its window holds (`make bench-bookkeeping` times one event stored both ways). This storage writes the same files in the same places as Dagster's
default (`storage: sqlite`), so a state folder moves between the two unchanged, and keeps only
the engines:

- the index shard's engine keeps one connection open: nothing watches `index.db`;
- a run shard's engine still closes its connection after each write. Closing the last connection
  is what checkpoints SQLite's write-ahead log into `<run_id>.db`, and the webserver follows a
  run live by watching that file (`SqliteEventLogStorageWatchdog`);
- the engines of the last few runs are kept (a process writes one or two runs at a time);
- a forked child drops, without closing, the engines it inherited: a SQLite connection must not
  cross a fork;
- a new run's file is a copy of an empty one made once per process. Dagster makes each with its
  tables and then reads every alembic migration script twice, to stamp and to check the revision
  (70-90 ms a run, more than all its events); the copy has the same tables, revision and WAL mode.
  A file another process made first is left to Dagster's own initialisation;
- which tables the index holds is remembered once seen: Dagster asks for every asset check event
  and every tagged event, with a new engine each time;
- a database already at Dagster's newest revision is opened as it is. Dagster reads every alembic
  migration script to learn that revision each time it opens the runs, schedules or index
  database (40 ms each, so about 150 ms per instance, for each CLI command and run worker); here
  it is read once per process. A database at any other revision goes through Dagster's own
  path, unchanged;
- a new state folder's runs, schedules and index databases are copies of the ones Dagster makes
  in an empty folder, made once per process (Dagster's path costs 200-300 ms of CPU per new
  folder, the copies a few). As for a run's file, a database another process made first is kept.

It overrides `SqliteEventLogStorage._connect`, a private method; dagster is pinned below 1.14
and `ploomes_cx_tests/test_instance_storage.py` fails if the override stops being used.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from dagster._core.instance.ref import (
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._core.storage.event_log.sqlite import sqlite_event_log
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorage,
)
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.schedules import SqliteScheduleStorage
from dagster._core.storage.sql import get_alembic_config
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS, create_db_conn_string
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool, QueuePool

KEPT_RUN_ENGINES = 8


class KeptEnginesSqliteEventLogStorage(SqliteEventLogStorage):
    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_pid = os.getpid()
        self._tables_seen: set[str] = set()
        super().__init__(base_dir, inst_data)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            if shard not in self._initialized_dbs:
                if shard == INDEX_SHARD_NAME or not self._copy_empty_run(shard):
                    self._initdb(self._engine(shard))
                self._initialized_dbs.add(shard)
            engine = self._engine(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def _copy_empty_run(self, shard: str) -> bool:
        """Writes the run's file as a copy of the empty one; False when it already exists."""
        path = self.path_for_shard(shard)
        return not os.path.exists(path) and _place(path, lambda: _empty_run_file(self._initdb))

    def _initdb(self, engine: Engine, for_index_shard: bool = False) -> None:
        if not _at_head(engine.url.database or ""):
            super()._initdb(engine, for_index_shard=for_index_shard)

    def has_table(self, table_name: str) -> bool:
        if table_name in self._tables_seen:
            return True
        found = super().has_table(table_name)
        if found:
            self._tables_seen.add(table_name)
        return found

    def _engine(self, shard: str) -> Engine:
        if self._engines_pid != os.getpid():
            for inherited in self._engines.values():
                inherited.dispose(close=False)
            self._engines, self._engines_pid = OrderedDict(), os.getpid()
        engine = self._engines.pop(shard, None)
        if engine is None:
            index = shard == INDEX_SHARD_NAME
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=QueuePool if index else NullPool,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                **({"pool_size": 1, "max_overflow": 2} if index else {}),
            )
        self._engines[shard] = engine
        runs = [name for name in self._engines if name != INDEX_SHARD_NAME]
        for name in runs[: max(0, len(runs) - KEPT_RUN_ENGINES)]:
            self._engines.pop(name).dispose()
        return engine

    def kept_engines(self) -> list[str]:
        """The shards whose engines are kept, oldest first (for the tests)."""
        return list(self._engines)

    def engine_of(self, shard: str) -> Engine | None:
        """The engine kept for `shard` in this process, if any (for the tests)."""
        return self._engines.get(shard) if self._engines_pid == os.getpid() else None

    def _drop_engines(self) -> None:
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def wipe(self) -> None:
        self._drop_engines()  # before the run shards' files are deleted
        self._tables_seen.clear()
        super().wipe()

    def dispose(self) -> None:
        self._drop_engines()
        super().dispose()


def _place(path: str, contents: Callable[[], bytes]) -> bool:
    """Writes `contents()` at `path` unless a file is there; False when one was.

    The copy is written beside its place and linked there, so nobody (the webserver watching
    the folder included) sees half a file, and a file made meanwhile by another process wins.
    """
    if os.path.exists(path):
        return False
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    partial = os.path.join(folder, f".new-db-{os.getpid()}-{uuid.uuid4().hex}.part")
    # the mode Dagster's own files get (0666 less the umask): a webserver or daemon running as
    # another user of the same folder must read them, which `mkstemp`'s 0600 forbade
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(contents())
        os.link(partial, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(partial)
    return True


_EMPTY: dict[str, bytes] = {}


def _empty_database(name: str, make: Callable[[str], object]) -> bytes:
    """The bytes of `name` as Dagster's own `make(folder)` leaves it in an empty folder, made
    once per process; its write-ahead log is checkpointed into the file first."""
    if name not in _EMPTY:
        with tempfile.TemporaryDirectory(prefix="ploomes-cx-empty-") as folder:
            made = make(folder)
            if hasattr(made, "dispose"):
                made.dispose()
            path = os.path.join(folder, name)
            with closing(sqlite3.connect(path)) as db:
                db.execute("pragma wal_checkpoint(truncate)")
            _EMPTY[name] = Path(path).read_bytes()
    return _EMPTY[name]


def _place_new_folder(base_dir: str) -> None:
    """A new state folder's three databases, as Dagster would make them (module docstring)."""
    _place(
        os.path.join(_runs_directory(base_dir), "runs.db"),
        lambda: _empty_database("runs.db", SqliteRunStorage.from_local),
    )
    _place(
        os.path.join(_schedule_directory(base_dir), "schedules.db"),
        lambda: _empty_database("schedules.db", SqliteScheduleStorage.from_local),
    )
    events = _event_logs_directory(base_dir)
    if os.path.exists(os.path.join(events, f"{INDEX_SHARD_NAME}.db")):
        return
    if not os.path.isdir(events) or not any(name.endswith(".db") for name in os.listdir(events)):
        # with run files and no index, Dagster rebuilds the index from them: left to it
        _place(
            os.path.join(events, f"{INDEX_SHARD_NAME}.db"),
            lambda: _empty_database(f"{INDEX_SHARD_NAME}.db", SqliteEventLogStorage),
        )


def _empty_run_file(initdb: Callable[[Engine], None]) -> bytes:
    """The bytes of a run file as Dagster's `_initdb` leaves it (its tables, WAL mode, the
    alembic stamp), made once per process."""

    def make(folder: str) -> Engine:
        engine = create_engine(f"sqlite:///{os.path.join(folder, 'run.db')}", poolclass=NullPool)
        initdb(engine)
        return engine

    return _empty_database("run.db", make)


_HEAD: list[str] = []


def _head_revision() -> str:
    """Dagster's newest alembic revision (one script folder serves its three SQLite databases)."""
    if not _HEAD:
        config = get_alembic_config(sqlite_event_log.__file__)
        _HEAD.append(str(ScriptDirectory.from_config(config).as_revision_number("head")))
    return _HEAD[0]


def _at_head(path: str, table: str | None = None) -> bool:
    """Whether the database at `path` exists, is stamped with the newest revision and, when
    named, holds `table`; any doubt (no file, locked, no stamp) answers no."""
    if not path or not os.path.exists(path):
        return False
    try:
        with closing(
            sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=SQLITE_BUSY_TIMEOUT_SECONDS)
        ) as db:
            stamped = db.execute("select version_num from alembic_version").fetchall()
            held = (
                table is None
                or db.execute(
                    "select 1 from sqlite_master where type = 'table' and name = ?", [table]
                ).fetchone()
            )
    except sqlite3.Error:
        return False
    return stamped == [(_head_revision(),)] and bool(held)


def _run_storage(folder: str) -> SqliteRunStorage:
    path = os.path.join(folder, "runs.db")
    if _at_head(path, table="instance_info"):  # what Dagster's `from_local` would leave as it is
        return SqliteRunStorage(create_db_conn_string(folder, "runs"))
    return SqliteRunStorage.from_local(folder)


def _schedule_storage(folder: str) -> SqliteScheduleStorage:
    if _at_head(os.path.join(folder, "schedules.db")):
        return SqliteScheduleStorage(create_db_conn_string(folder, "schedules"))
    return SqliteScheduleStorage.from_local(folder)


class KeptEnginesSqliteStorage(DagsterSqliteStorage):
    """`storage: sqlite` with the event log above; configured in the dagster.yaml ploomes-cx
    writes (`runtime/state.py`) as `storage: custom:` with `base_dir: {env: DAGSTER_HOME}`."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self.base_dir = base_dir
        _place_new_folder(base_dir)
        self._run_storage = _run_storage(_runs_directory(base_dir))
        self._event_log_storage = KeptEnginesSqliteEventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = _schedule_storage(_schedule_directory(base_dir))
        self._inst_data = inst_data
        super(DagsterSqliteStorage, self).__init__()

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: Any
    ) -> KeptEnginesSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)
