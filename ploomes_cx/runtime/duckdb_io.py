"""The DuckDB IO manager, with two fixes over the stock pandas handler.

The stock handler skips writing an empty frame, so a window with no records creates no table and
every downstream read fails; and it appends positionally, so a column order change corrupts a
table silently. Here an empty frame still creates the (empty) table, inserts go `BY NAME`, and a
column new in this version is added to a partitioned table an older version created.
A whole (unpartitioned) table is replaced in one `CREATE OR REPLACE`. The DELETE of a partition
slice before its write is the integration's own and is unchanged.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from dagster import OutputContext

# no public export: the type handler API is what dagster-duckdb-pandas itself subclasses
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler, TableSlice
from dagster_duckdb import DuckDBResource
from dagster_duckdb.io_manager import DuckDbClient, DuckDBIOManager
from dagster_duckdb_pandas import DuckDBPandasTypeHandler

from ploomes_cx.runtime.duckdb_keep import kept_open, release


class _PandasHandler(DuckDBPandasTypeHandler):
    def handle_output(
        self, context: OutputContext, table_slice: TableSlice, obj: pd.DataFrame, connection
    ) -> None:
        table = f"{table_slice.schema}.{table_slice.table}"
        connection.register("_ploomes_cx_out", obj)
        try:
            if not table_slice.partition_dimensions:
                # A whole table: replace it in one statement, so a new column never breaks the write.
                connection.execute(f"create or replace table {table} as select * from _ploomes_cx_out")
            else:
                connection.execute(
                    f"create table if not exists {table} as select * from _ploomes_cx_out limit 0"
                )
                add_new_columns(connection, table, "_ploomes_cx_out")
                if not obj.empty:
                    connection.execute(f"insert into {table} by name select * from _ploomes_cx_out")
        finally:
            connection.unregister("_ploomes_cx_out")
        context.add_output_metadata(
            {"dagster/partition_row_count" if context.has_asset_partitions else "dagster/row_count": len(obj)}
        )


def add_new_columns(connection: duckdb.DuckDBPyConnection, table: str, frame: str) -> None:
    """Columns the registered `frame` has and a table written by an older version lacks are added
    (null in the old rows), so an upgrade never breaks the next write; readers treat the null."""
    have = {row[0] for row in connection.execute(f"describe {table}").fetchall()}
    for name, kind, *_ in connection.execute(f"describe {frame}").fetchall():
        if name not in have:
            connection.execute(f'alter table {table} add column "{name}" {kind}')


class _KeptClient(DuckDbClient):
    """dagster-duckdb's client, whose database stays open a moment after (`duckdb_keep.py`)."""

    @staticmethod
    @contextlib.contextmanager
    def connect(context, table_slice) -> Iterator[duckdb.DuckDBPyConnection]:
        with (
            DuckDbClient.connect(context, table_slice) as con,
            kept_open(context.resource_config["database"]),
        ):
            yield con


class PloomesCxDuckDBIOManager(DuckDBIOManager):
    """DuckDB pandas IO manager; one database file per mapping under `$PLOOMES_CX_HOME`."""

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [_PandasHandler()]

    @staticmethod
    def default_load_type() -> type | None:
        return pd.DataFrame

    def create_io_manager(self, context) -> DbIOManager:
        return DbIOManager(
            db_client=_KeptClient(),
            database=self.database,
            schema=self.schema_,
            type_handlers=self.type_handlers(),
            default_load_type=self.default_load_type(),
            io_manager_name="DuckDBIOManager",
        )


class PloomesCxDuckDBResource(DuckDBResource):
    """dagster-duckdb's resource, whose database stays open a moment after (`duckdb_keep.py`)."""

    @contextlib.contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with super().get_connection() as con, kept_open(self.database):
            yield con


def database_path(home: Path, mapping_name: str) -> Path:
    """`warehouse_<name>.duckdb`: the catalog DuckDB derives from the file name must differ from the
    schema (the mapping name), or every unqualified `<name>.<table>` reference is ambiguous."""
    return home / f"warehouse_{mapping_name}.duckdb"


def _bound(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> duckdb.DuckDBPyRelation | None:
    """`schema.table` bound by name, or None when the catalog has no such name.

    Binding runs no query: 0.19 ms, against 0.68 ms for a query of DuckDB's `duckdb_tables()`
    (`make bench-bookkeeping`), on a question a run asks dozens of times. A name that is not
    found leaves an open transaction usable. An attached database named like the schema would
    make the name ambiguous (`database_path` keeps them apart): that too counts as not found."""
    try:
        return con.table(f'"{schema}"."{table}"')
    except (duckdb.CatalogException, duckdb.BinderException):
        return None


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """Whether `schema.table` exists: tables appear with the first window that writes them.
    A view of that name is not a table."""
    bound = _bound(con, schema, table)
    return bound is not None and bound.type == "TABLE_RELATION"


def has_column(con: duckdb.DuckDBPyConnection, schema: str, table: str, column: str) -> bool:
    """Whether `schema.table` has `column`: a table an older version wrote may lack a new one."""
    bound = _bound(con, schema, table)
    return bound is not None and column in bound.columns


@contextlib.contextmanager
def connection(resource: DuckDBResource) -> Iterator[duckdb.DuckDBPyConnection]:
    """`resource.get_connection()` that also closes when the step fails.

    dagster-duckdb's `get_connection` closes after its `yield` without a `finally`, so a step that
    raises (a Failure, CustomerX down) leaves the file open in its process until garbage
    collection, and the next connection there with other settings (a read-only one) is refused.
    """
    with resource.get_connection() as con:
        try:
            yield con
        finally:
            con.close()


class WarehouseBusy(Exception):
    """Another process kept the warehouse for longer than a reader waits."""


@contextlib.contextmanager
def read_only(path: Path, wait_seconds: float = 20.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse opened for reading by a command that is not a run (`review`).

    DuckDB lets no other process open a file one process writes, and a run's steps hold their
    mapping's file while they write it (a load step for its whole load): this waits for it, up to
    `wait_seconds`, and then says who to wait for instead of failing with DuckDB's lock error.
    """
    waited, pause = 0.0, 0.2
    release(path)  # a read-only connection must not find the database kept open here
    while True:
        try:
            con = duckdb.connect(str(path), read_only=True)
            break
        except duckdb.IOException as exc:
            if waited >= wait_seconds:
                raise WarehouseBusy(
                    f"{path} is in use by another ploomes-cx process (a sync, reconcile or listen of this "
                    f"mapping) after {waited:.0f} s of waiting; run this again when it has finished"
                ) from exc
            time.sleep(pause)
            waited, pause = waited + pause, min(pause * 2, 2.0)
    try:
        yield con
    finally:
        con.close()


def release_buffers(con: duckdb.DuckDBPyConnection, limit: str, floor: str = "64MB") -> None:
    """Give back the table pages DuckDB keeps cached after a scan, then allow `limit` again.

    DuckDB holds the pages a query read in its buffer pool, up to its memory limit, until it needs
    the room; staging's pandas work after the payload reads needs it more (about 200 MB of the
    process on the million-person benchmark). Lowering the limit to `floor` evicts them. When
    DuckDB cannot evict that much (pages in use), it keeps them: this only saves memory.
    """
    with contextlib.suppress(duckdb.Error):
        con.execute(f"set memory_limit = '{floor}'")
    con.execute(f"set memory_limit = '{limit}'")


def one_row(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> tuple[Any, ...] | None:
    """The first row of `sql`, or None, with the result read to its end.

    DuckDB 2 keeps a result half-read by `fetchone()` open on the connection, and the next
    `register()` there fails ("connection has an unfinished result"): a staging that asked one
    count before registering a frame failed, was retried, and fell back to a full re-stage."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None


def fetch_frame(con: duckdb.DuckDBPyConnection, sql: str, sort_by: str | None = None) -> pd.DataFrame:
    """The result of `sql` as a pandas frame with one block per column, sorted by `sort_by`.

    `fetchdf()` hands pandas a dict of columns, and pandas copies every text column into one
    two-dimensional block; sorting afterwards copies the frame again. On a million parsed contacts
    that was 0.36 GiB of peak memory and most of a second. Here each column is taken from DuckDB's
    numpy result once, put in sorted order, and its unsorted array dropped before the next one.
    A null is None in a text column and <NA> in an integer one, as `fetchdf()` gives them.
    """
    arrays = con.execute(sql).fetchnumpy()
    order = np.argsort(arrays[sort_by], kind="stable") if sort_by else None
    n = len(next(iter(arrays.values()))) if arrays else 0
    frame = pd.DataFrame(index=pd.RangeIndex(n))
    for name in list(arrays):
        values = _with_nulls(arrays.pop(name))
        frame[name] = values if order is None else values[order]
    return frame


def _with_nulls(values: np.ndarray) -> np.ndarray | pd.api.extensions.ExtensionArray:
    """DuckDB's masked array for a column with nulls, as the array `fetchdf()` would give."""
    if not isinstance(values, np.ma.MaskedArray):
        return values
    mask = np.ma.getmaskarray(values)
    kind = values.dtype.kind
    if kind in "iu":
        return pd.arrays.IntegerArray(values.data, mask)
    if kind == "b":
        return pd.arrays.BooleanArray(values.data, mask)
    if kind == "f":
        return values.filled(np.nan)
    if kind in "mM":
        return values.filled(np.datetime64("NaT"))
    data = values.data.astype(object, copy=False)
    data[mask] = None
    return data
