"""`make bench-bookkeeping`: the fixed cost around each event and each API client (issue 29).

A run stores 150-190 Dagster events and opens an HTTP client per API step, whatever the size of
its window. This times, on tmpfs when the machine has one:
- storing an event with Dagster's SQLite event log and with ours (`runtime/instance_storage.py`),
  for a log line (its run's file only), for an asset materialization (also the index) and for
  the first event of a new run (its file made);
- opening the instance on a state folder made before, with Dagster's SQLite storage and with ours
  (what each CLI command and each run worker does first), and on a new state folder (its three
  databases made: each test's folder, a new deployment);
- a step's DuckDB connection to a warehouse, outside a run and between a CLI run's steps, where
  the database stays open a moment (`runtime/duckdb_keep.py`; a run opens about ten);
- asking whether a DuckDB table exists, with a query of DuckDB's catalog function and by
  binding its name (`duckdb_io.table_exists`);
- making an httpx client with its own TLS context and with the shared one (`runtime/tls.py`).
It prints milliseconds per operation and the ratio old / new; the ceiling is the old figure.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import duckdb
import httpx
from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from ploomes_cx.runtime.duckdb_io import PloomesCxDuckDBResource, table_exists
from ploomes_cx.runtime.duckdb_keep import kept_between_steps
from ploomes_cx.runtime.instance_storage import KeptEnginesSqliteEventLogStorage
from ploomes_cx.runtime.state import DAGSTER_YAML, dagster_yaml
from ploomes_cx.runtime.tls import tls_context


def _log(run_id: str) -> EventLogEntry:
    return EventLogEntry(error_info=None, level=20, user_message="x", run_id=run_id, timestamp=time.time())


def _materialization(run_id: str) -> EventLogEntry:
    event = DagsterEvent(
        DagsterEventType.ASSET_MATERIALIZATION.value,
        "job",
        event_specific_data=StepMaterializationData(dg.AssetMaterialization(dg.AssetKey("a"))),
    )
    return EventLogEntry(
        error_info=None, level=20, user_message="", run_id=run_id, timestamp=time.time(), dagster_event=event
    )


def _ms(action: Callable[[], object], n: int) -> float:
    action()  # the first call creates files and engines
    started = time.perf_counter()
    for _ in range(n):
        action()
    return (time.perf_counter() - started) / n * 1000


def _instance_folder(folder: Path, ours: bool) -> Path:
    folder.mkdir()
    plain = DAGSTER_YAML + f"storage:\n  sqlite:\n    base_dir: {json.dumps(str(folder))}\n"
    (folder / "dagster.yaml").write_text(dagster_yaml(folder) if ours else plain)
    return folder


def _open_once(folder: Path) -> None:
    with dg.DagsterInstance.from_config(str(folder)) as instance:
        instance.get_runs(limit=1)


def _instance_ms(base: Path, n: int) -> tuple[float, float]:
    """ms to open an instance on a folder made before, with Dagster's storage and with ours."""
    figures = []
    for name in ("dagster", "ours"):
        folder = _instance_folder(base / f"instance-{name}", name == "ours")
        figures.append(_ms(lambda f=folder: _open_once(f), n))
    return figures[0], figures[1]


def _new_instance_ms(base: Path, n: int) -> tuple[float, float]:
    """ms to open an instance on a new state folder (its databases made), Dagster's and ours."""
    figures = []
    for name in ("dagster", "ours"):
        made = itertools.count()
        figures.append(
            _ms(
                lambda k=name, c=made: _open_once(_instance_folder(base / f"new-{k}-{next(c)}", k == "ours")),
                n,
            )
        )
    return figures[0], figures[1]


def _connection_ms(base: Path, n: int) -> tuple[float, float]:
    """ms for a step's DuckDB connection (opened, one query, closed) to a warehouse of 60 tables,
    through the resource the steps use: outside a run, and between the steps of a CLI run, where
    the database stays open a moment (`runtime/duckdb_keep.py`)."""
    path = base / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema acme")
        for i in range(60):
            con.execute(f"create table acme.t{i} (id bigint, payload varchar)")
    resource = PloomesCxDuckDBResource(database=str(path))

    def step() -> None:
        with resource.get_connection() as con:
            con.execute("select count(*) from acme.t1").fetchall()

    anew = _ms(step, n)
    with kept_between_steps():
        kept = _ms(step, n)
    return anew, kept


def _table_exists_ms(base: Path, n: int) -> tuple[float, float]:
    """ms to ask whether a table exists (half the names do) in a schema of 40 tables: a query of
    DuckDB's catalog function, as before, against `duckdb_io.table_exists` (the name bound)."""
    with duckdb.connect(str(base / "catalog.duckdb")) as con:
        con.execute("create schema acme")
        for i in range(40):
            con.execute(f"create table acme.t{i} (id bigint, a varchar, b varchar, c timestamp)")
        names = itertools.cycle(["t5", "nope"])
        sql = "select count(*) from duckdb_tables() where schema_name = ? and table_name = ?"
        query = _ms(lambda: con.execute(sql, ["acme", next(names)]).fetchall(), n)
        bound = _ms(lambda: table_exists(con, "acme", next(names)), n)
    return query, bound


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--instances", type=int, default=20)
    args = parser.parse_args()
    tmpfs = Path("/dev/shm")
    base = Path(tempfile.mkdtemp(dir=tmpfs if tmpfs.is_dir() else None))
    rows: list[tuple[str, float, float]] = []
    runs = itertools.count()
    cases = (
        ("event: log line", lambda: _log("run")),
        ("event: asset materialization", lambda: _materialization("run")),
        ("event: first of a new run", lambda: _log(f"run-{next(runs)}")),
    )
    for label, entry in cases:
        figures = []
        for name, kind in (("dagster", SqliteEventLogStorage), ("ours", KeptEnginesSqliteEventLogStorage)):
            storage = kind(str(base / f"{name}-{label[7:12]}"))
            count = args.runs if "new run" in label else args.events
            figures.append(_ms(lambda s=storage, e=entry: s.store_event(e()), count))
            storage.dispose()
        rows.append((label, *figures))
    rows.append(("open the instance", *_instance_ms(base, args.instances)))
    rows.append(("open a new state folder", *_new_instance_ms(base, args.instances)))
    rows.append(("a step's DuckDB connection", *_connection_ms(base, args.events)))
    rows.append(("whether a DuckDB table exists", *_table_exists_ms(base, args.events)))
    rows.append(
        (
            "httpx client",
            _ms(lambda: httpx.Client().close(), args.clients),
            _ms(lambda: httpx.Client(verify=tls_context()).close(), args.clients),
        )
    )
    print(f"{'what':32} {'before ms':>10} {'now ms':>10} {'ratio':>7}")
    for label, before, now in rows:
        print(f"{label:32} {before:10.3f} {now:10.3f} {before / now:7.1f}")


if __name__ == "__main__":
    main()
