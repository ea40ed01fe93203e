"""DuckDB helpers staging reads with (runtime/duckdb_io.py): the pages a scan left cached are given
back, and a large result becomes a frame without pandas' block copies."""

import subprocess
import sys
import time

import duckdb
import pandas as pd
import pandas.testing as pdt
import pytest

from ploomes_cx.runtime.duckdb_io import (
    PloomesCxDuckDBResource,
    WarehouseBusy,
    fetch_frame,
    has_column,
    one_row,
    read_only,
    release_buffers,
    table_exists,
)
from ploomes_cx.runtime.duckdb_keep import LINGER_SECONDS, kept_between_steps


def _cached(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute(
        "select sum(memory_usage_bytes) from duckdb_memory() where tag = 'BASE_TABLE'"
    ).fetchone()[0]


def test_pages_a_scan_left_cached_are_given_back_and_the_limit_restored(tmp_path) -> None:
    with duckdb.connect(str(tmp_path / "pages.duckdb")) as con:
        con.execute(
            "create table t as select md5(i::varchar) || md5((i + 1)::varchar) as s from range(400000) r(i)"
        )
        con.execute("checkpoint")
        con.execute("set memory_limit = '256MB'")
        assert con.execute("select count(distinct s) from t").fetchone()[0] == 400000
        assert _cached(con) > 4 * 2**20  # the scan's pages stay in the buffer pool
        release_buffers(con, "256MB", floor="1MB")
        assert _cached(con) <= 2**20
        assert con.execute("select current_setting('memory_limit')").fetchone()[0] in (
            "256.0 MiB",
            "244.1 MiB",
        )
        assert con.execute("select count(*) from t").fetchone()[0] == 400000  # still usable


VALUES = """select * from (values
    (3, true, 1, 1.5, timestamp '2020-01-03', 'cpf'::enum('cpf', 'cnpj'), 'três'),
    (1, null, null, null, null, null, null),
    (2, false, 7, 2.5, timestamp '2020-01-02', 'cnpj'::enum('cpf', 'cnpj'), 'um')
) t(id, b, i, f, ts, e, s)"""


def test_a_fetched_frame_holds_what_fetchdf_gives_sorted_with_one_block_per_column() -> None:
    with duckdb.connect() as con:
        expected = con.execute(VALUES).fetchdf().sort_values("id", ignore_index=True)
        frame = fetch_frame(con, VALUES, sort_by="id")
    assert frame["id"].tolist() == [1, 2, 3]
    assert frame._mgr.nblocks == len(frame.columns)  # no column was copied into a shared block
    assert frame["s"].tolist() == [None, "um", "três"]  # null text is None, as fetchdf gives it
    # an ENUM comes as its values' strings (fetchdf: a categorical), one shared object per value
    assert frame["e"].tolist()[1:] == ["cnpj", "cpf"] and pd.isna(frame["e"][0])
    pdt.assert_frame_equal(frame.drop(columns="e"), expected.drop(columns="e"))
    with duckdb.connect() as con:
        unsorted = fetch_frame(con, "select * from range(3) r(i) order by i desc")
    assert unsorted["i"].tolist() == [2, 1, 0]


def test_one_row_leaves_no_half_read_result_a_frame_registered_next_would_trip_on() -> None:
    """DuckDB 2 refuses `register()` while a result is half read (`fetchone()`): a staging that
    asked one count and then registered a frame failed and fell back to a full re-stage."""
    with duckdb.connect() as con:
        con.execute("create table t as select * from range(3) r(a)")
        assert one_row(con, "select count(*) from t where a >= ?", [1]) == (2,)
        con.register("frame", pd.DataFrame({"a": [1]}))  # raised after fetchone()
        assert one_row(con, "select a from frame where a > 5") is None
        con.unregister("frame")


def test_a_table_and_its_columns_are_found_in_their_own_schema_only(tmp_path) -> None:
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("create schema acme; create schema other")
        con.execute("create table acme.raw_deals (id bigint, head varchar)")
        con.execute("create table other.raw_persons (id bigint, custom_values varchar)")
        con.execute("create temp table raw_persons (id bigint)")
        assert table_exists(con, "acme", "raw_deals")
        assert not table_exists(con, "acme", "raw_persons")  # another schema's, or a temporary one
        assert not table_exists(con, "acme", "raw_dea")
        assert has_column(con, "acme", "raw_deals", "head")
        assert not has_column(con, "acme", "raw_deals", "custom_values")
        assert not has_column(con, "acme", "raw_persons", "id")
        assert not table_exists(con, "nowhere", "raw_deals") and not has_column(
            con, "nowhere", "raw_deals", "id"
        )
        con.execute("create view acme.raw_notes as select 1 as id")
        assert not table_exists(con, "acme", "raw_notes")  # a view is not a table
        con.execute("begin")
        con.execute("insert into acme.raw_deals values (1, 'h')")
        assert not table_exists(con, "acme", "raw_tasks")  # a name not found leaves the transaction usable
        con.execute("insert into acme.raw_deals values (2, 'h')")
        con.execute("commit")
        assert con.execute("select count(*) from acme.raw_deals").fetchone() == (2,)


def _hold(path, seconds: float = 60) -> subprocess.Popen:
    """Another process writing the warehouse (a run's load step) for `seconds`, once it has it."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(path)!r}); print(1, flush=True); "
            f"time.sleep({seconds}); c.close()",
        ],
        stdout=subprocess.PIPE,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == b"1"
    return holder


def test_a_reader_waits_for_a_run_holding_the_warehouse_and_then_says_who_to_wait_for(tmp_path) -> None:
    path = tmp_path / "w.duckdb"
    duckdb.connect(str(path)).close()
    holder = _hold(path, seconds=1)
    with read_only(path) as con:  # the run ends within the wait
        assert con.execute("select 1").fetchall() == [(1,)]
    holder.wait()
    holder = _hold(path)
    try:
        with (
            pytest.raises(WarehouseBusy, match="in use by another ploomes-cx process") as caught,
            read_only(path, wait_seconds=0.5),
        ):
            pass
        assert str(path) in str(caught.value)
    finally:
        holder.kill()
        holder.wait()


def _step(path) -> str:
    """One step's connection, as dagster-duckdb opens it and ours keeps (`PloomesCxDuckDBResource`):
    it sets the database's memory limit and says what the step before left there."""
    with PloomesCxDuckDBResource(database=str(path)).get_connection() as con:
        before = con.execute("select current_setting('memory_limit')").fetchall()[0][0]
        con.execute("set memory_limit = '123MB'")  # the open database's own setting
    return before


def test_inside_a_run_the_next_steps_connection_finds_the_database_still_open(tmp_path) -> None:
    path = tmp_path / "w.duckdb"
    default = _step(path)
    assert _step(path) == default  # outside a run nothing is kept: opened anew
    with kept_between_steps():
        _step(path)
        assert _step(path) != default  # the same open database
        with PloomesCxDuckDBResource(database=str(path)).get_connection():
            time.sleep(LINGER_SECONDS + 0.2)  # a step longer than the linger: counted from its end
        assert _step(path) != default
        with read_only(path) as con:  # a reader of this process first closes what is kept
            assert con.execute("select 1").fetchall() == [(1,)]
        _step(path)
        time.sleep(LINGER_SECONDS + 0.4)  # idle: closed, the file free for other processes
        holder = _hold(path, seconds=0)
        holder.wait()
        _step(path)
    assert _step(path) == default  # closed when the run ended
