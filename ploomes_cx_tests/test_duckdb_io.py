"""Staging gives back the table pages DuckDB cached while reading the payloads (runtime/duckdb_io.py)."""

import duckdb

from ploomes_cx.runtime.duckdb_io import release_buffers


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
