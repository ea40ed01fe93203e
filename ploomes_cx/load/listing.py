"""What CustomerX held at the last full listing of an entity, kept in DuckDB next to the crosswalk.

A full listing costs one request per 20 records (customerx-api.md §4), so it is taken at most
once per `sync` command: the later windows of the same command reuse the rows stored here. Its
marker (when, how many, in which command) also tells later commands that the mapping's first
loads are behind it, so that a new record may be matched with a filtered lookup instead
(load/adoption.py). Both tables are rewritten whole by each listing of the entity.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from ploomes_cx.runtime.duckdb_io import one_row


@dataclass(frozen=True)
class Marker:
    sync_id: str
    listed_at: dt.datetime
    total: int


def ensure(con: duckdb.DuckDBPyConnection, schema: str) -> None:
    con.execute(f"""create table if not exists {schema}.customerx_listings (
        entity varchar primary key, sync_id varchar, listed_at timestamp, total bigint)""")
    con.execute(f"create table if not exists {schema}.customerx_listed (entity varchar, record varchar)")


def marker(con: duckdb.DuckDBPyConnection, schema: str, entity: str) -> Marker | None:
    ensure(con, schema)
    row = one_row(
        con, f"select sync_id, listed_at, total from {schema}.customerx_listings where entity = ?", [entity]
    )
    return None if row is None else Marker(row[0] or "", row[1], int(row[2]))


def save(
    con: duckdb.DuckDBPyConnection, schema: str, entity: str, sync_id: str, rows: list[dict[str, Any]]
) -> None:
    ensure(con, schema)
    records = pd.DataFrame(  # noqa: F841 (read by the insert below)
        {"entity": entity, "record": [json.dumps(r, ensure_ascii=False, default=str) for r in rows]},
        columns=["entity", "record"],
    )
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    con.execute("begin")
    try:
        con.execute(f"delete from {schema}.customerx_listed where entity = ?", [entity])
        con.execute(f"insert into {schema}.customerx_listed select entity, record from records")
        con.execute(f"delete from {schema}.customerx_listings where entity = ?", [entity])
        con.execute(
            f"insert into {schema}.customerx_listings values (?, ?, ?, ?)", [entity, sync_id, now, len(rows)]
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def rows(con: duckdb.DuckDBPyConnection, schema: str, entity: str) -> list[dict[str, Any]]:
    ensure(con, schema)
    found = con.execute(f"select record from {schema}.customerx_listed where entity = ?", [entity]).fetchall()
    return [json.loads(r[0]) for r in found]
