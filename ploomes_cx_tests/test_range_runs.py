"""A range of windows is one pass (issue 14, part 1): every window extracted, then one staging and
one load, so a multi-window first sync writes each record once; each raw row keeps its own window."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import threading
import time
from collections import Counter
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pytest

from ploomes_cx.cli import main
from ploomes_cx.mapping import load_mapping
from ploomes_cx.partitions import partitions_def, window_cutter
from ploomes_cx.runner import WINDOWS_TAG, one_at_a_time
from ploomes_cx.runtime.duckdb_io import database_path
from ploomes_cx.sandbox import PloomesDataset
from ploomes_cx_tests.conftest import point_at, write_mapping
from ploomes_cx_tests.helpers import staged

WEEK = "2026-11-02..2026-11-08"


def _identity(resource: str, body: dict) -> tuple:
    """Which record a write is about: its external id; a timeline entry has none, so its content."""
    if resource == "timelines":
        return (resource, body["external_id_client"], body["title"], body["created_at"], body["body"])
    return (resource, body[f"external_id_{resource[:-1]}"])


@pytest.fixture
def dataset() -> PloomesDataset:
    return PloomesDataset(persons=150, seed=5)


def _raw_rows(home, name: str, table: str) -> list[tuple]:
    with duckdb.connect(str(database_path(home, name)), read_only=True) as con:
        return con.execute(
            f"select window_start, id, run_id, extracted_at from {name}.{table} order by 1, 2"
        ).fetchall()


def test_a_seven_window_first_sync_writes_each_record_once(
    tmp_path, home, ploomes, customerx, monkeypatch, capsys
):
    point_at(monkeypatch, ploomes, customerx)
    path = write_mapping(tmp_path, "week", "quality:\n  max_rejected_ratio: 0.9\n")
    assert main(["sync", str(path), "--window", WEEK]) == 0
    out = capsys.readouterr().out
    assert f"window {WEEK}: ok" in out and out.count(": ok in") == 1  # one run for the seven windows
    writes = Counter(
        _identity(w["path"].split("?")[0].rsplit("/", 1)[-1], w["body"]) for w in customerx.writes
    )
    assert writes and max(writes.values()) == 1  # no record written twice
    assert {w["method"] for w in customerx.writes} == {"POST"}
    staged_total = sum(
        len(staged(home, "week", f"stg_{e}")) for e in ("clients", "contacts", "contracts", "timeline")
    )
    assert len(customerx.writes) == staged_total  # every staged record landed, once
    # every window of the week holds its own rows, written by that one run
    windows = {row[0].date().isoformat() for row in _raw_rows(home, "week", "raw_persons")}
    assert windows == {f"2026-11-0{d}" for d in range(2, 9)}


def test_re_running_one_day_of_a_range_run_touches_only_that_days_raw_rows(
    tmp_path, home, ploomes, customerx, monkeypatch
):
    point_at(monkeypatch, ploomes, customerx)
    path = write_mapping(tmp_path, "rerun", "quality:\n  max_rejected_ratio: 0.9\n")
    assert main(["sync", str(path), "--window", WEEK]) == 0
    tables = ("raw_persons", "raw_organizations", "raw_deals", "raw_dependencies")
    before = {t: _raw_rows(home, "rerun", t) for t in tables}
    assert main(["sync", str(path), "--window", "2026-11-05"]) == 0
    day = "2026-11-05"
    for table in tables:
        after = _raw_rows(home, "rerun", table)
        others = [r for r in before[table] if r[0].date().isoformat() != day]
        assert [r for r in after if r[0].date().isoformat() != day] == others, table
        old = {r[1] for r in before[table] if r[0].date().isoformat() == day}
        new = [r for r in after if r[0].date().isoformat() == day]
        assert {r[2] for r in new} & {r[2] for r in before[table]} == set(), table  # that day: rewritten
        if table != "raw_dependencies":  # the same records changed that day
            assert {r[1] for r in new} == old and old, table


def _chunk_runs(home) -> dict[tuple[str, str], dg.DagsterRun]:
    """The runs of the one `sync` made so far, by (first window, layer run)."""
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    instance = dg.DagsterInstance.get()
    runs = {}
    for run in instance.get_runs():
        first = run.tags[WINDOWS_TAG].split("..")[0]
        layers = {key.path[-1].split("_")[0] for key in run.asset_selection or ()}
        kind = "raw" if layers == {"raw"} else "load" if layers == {"load"} else "staging"
        runs[(first, kind)] = (run, instance.get_run_stats(run.run_id))
    return runs


def test_a_long_range_runs_in_chunks_and_extracts_the_next_chunk_while_this_one_loads(
    tmp_path, home, ploomes, customerx, monkeypatch, capsys
):
    point_at(monkeypatch, ploomes, customerx)
    path = write_mapping(tmp_path, "chunked", "quality:\n  max_rejected_ratio: 0.9\n")
    path.write_text(path.read_text().replace("sync:\n", "sync:\n  windows_per_run: 3\n"))
    assert main(["sync", str(path), "--window", WEEK]) == 0
    out = capsys.readouterr().out
    for label in ("2026-11-02..2026-11-04", "2026-11-05..2026-11-07", "2026-11-08"):
        assert f"window {label}: ok" in out
    assert {row[0].date().isoformat() for row in _raw_rows(home, "chunked", "raw_persons")} == {
        f"2026-11-0{d}" for d in range(2, 9)
    }
    # three runs a chunk; chunk k+1 is extracted after chunk k is staged and while it loads, and
    # staged only after chunk k has loaded
    runs = _chunk_runs(home)
    firsts = ["2026-11-02", "2026-11-05", "2026-11-08"]
    assert set(runs) == {(f, kind) for f in firsts for kind in ("raw", "staging", "load")}
    for this, after in itertools.pairwise(firsts):
        assert runs[(after, "raw")][1].start_time >= runs[(this, "staging")][1].end_time
        extract, load = runs[(after, "raw")][1], runs[(this, "load")][1]
        assert max(extract.start_time, load.start_time) < min(extract.end_time, load.end_time)  # overlapped
        assert runs[(after, "staging")][1].start_time >= runs[(this, "load")][1].end_time
        assert runs[(after, "staging")][1].start_time >= runs[(after, "raw")][1].end_time
    assert {run.status for run, _ in runs.values()} == {dg.DagsterRunStatus.SUCCESS}
    # every record CustomerX holds came once, through the crosswalk: no duplicate from the overlap
    creates = Counter(
        _identity(w["path"].split("?")[0].rsplit("/", 1)[-1], w["body"])
        for w in customerx.writes
        if w["method"] == "POST"
    )
    assert creates and max(creates.values()) == 1


def test_a_chunk_that_fails_to_load_stops_the_range_after_the_next_extraction_ends(
    tmp_path, home, ploomes, customerx, monkeypatch, capsys
):
    point_at(monkeypatch, ploomes, customerx)
    monkeypatch.setenv("CUSTOMERX_TOKEN", "not-the-token")
    path = write_mapping(tmp_path, "stopped", "quality:\n  max_rejected_ratio: 0.9\n")
    path.write_text(path.read_text().replace("sync:\n", "sync:\n  windows_per_run: 3\n"))
    assert main(["sync", str(path), "--window", WEEK]) == 3
    err = capsys.readouterr().err
    assert "window 2026-11-02..2026-11-04 failed; 4 later window(s) not loaded" in err
    assert "not-the-token" not in err
    runs = _chunk_runs(home)
    assert set(runs) == {
        ("2026-11-02", "raw"),
        ("2026-11-02", "staging"),
        ("2026-11-02", "load"),
        ("2026-11-05", "raw"),  # was under way: it finished, and nothing after it started
    }
    assert runs[("2026-11-05", "raw")][0].status == dg.DagsterRunStatus.SUCCESS
    assert runs[("2026-11-02", "load")][0].status == dg.DagsterRunStatus.FAILURE
    assert not customerx.writes


@pytest.mark.parametrize(
    ("cadence", "stamp", "window"),
    [
        ("daily", dt.datetime(2026, 11, 3, 23, 59, 59), dt.datetime(2026, 11, 3)),
        ("daily", dt.datetime(2026, 11, 4, 0, 0), dt.datetime(2026, 11, 4)),
        ("hourly", dt.datetime(2026, 11, 3, 14, 30), dt.datetime(2026, 11, 3, 14)),
        # changed before the first window: the history window holds it
        ("daily", dt.datetime(2025, 6, 1, 8), dt.datetime(2026, 11, 1)),
        ("hourly", dt.datetime(2026, 10, 31, 23, 59), dt.datetime(2026, 11, 1, 0)),
    ],
)
def test_each_row_of_a_range_run_goes_to_the_window_its_change_date_falls_in(
    tmp_path, cadence, stamp, window
):
    path = write_mapping(tmp_path, "cut")
    path.write_text(path.read_text().replace("sync:\n", f"sync:\n  cadence: {cadence}\n"))
    m = load_mapping(path)
    assert window_cutter(m)(stamp) == window
    # the same window Dagster's partitions give that moment
    key = partitions_def(m).get_partition_key_for_timestamp(
        max(stamp, window).replace(tzinfo=ZoneInfo(m.sync.timezone)).timestamp()
    )
    assert partitions_def(m).time_window_for_partition_key(key).start.replace(tzinfo=None) == window


def test_progress_lines_from_two_runs_at_once_are_never_run_together() -> None:
    written: list[str] = []

    def slow_print(line: str) -> None:  # what print does: the text, then its newline, apart
        for part in (line, "\n"):
            written.append(part)
            time.sleep(0.0005)

    emit = one_at_a_time(slow_print)
    threads = [
        threading.Thread(target=lambda n=n: [emit(f"run {n} line {i}") for i in range(40)]) for n in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = "".join(written).splitlines()
    assert sorted(lines) == sorted(f"run {n} line {i}" for n in range(2) for i in range(40))
