"""The load's memory, in DuckDB next to the staging tables: crosswalk and ledger.

`crosswalk` maps each record we own (entity, our external id) to its CustomerX id, with the
hash and body last sent. A row is written *before* a create (`state = pending`) and completed
as soon as the record lands (`sent`), so a run killed at any point leaves at most one record per
entity in doubt, and the next run checks that one instead of creating it twice.

`ledger` keeps every record's outcome per run: created, updated, adopted, unchanged, rejected
(by CustomerX, with status and body, or by us before any call), failed (after retries).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

LEDGER_COLUMNS = ["run_id", "entity", "external_id", "outcome", "http_status", "detail", "recorded_at"]


@dataclass
class Known:
    customerx_id: int | None
    content_hash: str | None
    body: dict[str, Any] | None
    state: str


def ensure(con: duckdb.DuckDBPyConnection, schema: str) -> None:
    con.execute(f"create schema if not exists {schema}")
    con.execute(f"""create table if not exists {schema}.crosswalk (
        entity varchar, external_id varchar, customerx_id bigint, content_hash varchar, body varchar,
        state varchar, updated_at timestamp, run_id varchar, primary key (entity, external_id))""")
    con.execute(f"""create table if not exists {schema}.ledger (
        run_id varchar, entity varchar, external_id varchar, outcome varchar, http_status integer,
        detail varchar, recorded_at timestamp)""")


def read(con: duckdb.DuckDBPyConnection, schema: str, entity: str) -> dict[str, Known]:
    rows = con.execute(
        f"select external_id, customerx_id, content_hash, body, state from {schema}.crosswalk where entity = ?",
        [entity],
    ).fetchall()
    return {r[0]: Known(r[1], r[2], json.loads(r[3]) if r[3] else None, r[4]) for r in rows}


def record(
    con: duckdb.DuckDBPyConnection,
    schema: str,
    entity: str,
    external_id: str,
    customerx_id: int | None,
    content_hash: str | None,
    body: dict[str, Any] | None,
    state: str,
    run_id: str,
) -> None:
    """Write one crosswalk row now (autocommit): the load's progress survives a kill."""
    con.execute(
        f"insert or replace into {schema}.crosswalk values (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            entity,
            external_id,
            customerx_id,
            content_hash,
            None if body is None else json.dumps(body, ensure_ascii=False),
            state,
            dt.datetime.now(dt.UTC).replace(tzinfo=None),
            run_id,
        ],
    )


def append_ledger(con: duckdb.DuckDBPyConnection, schema: str, rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    frame = pd.DataFrame(rows, columns=LEDGER_COLUMNS)
    frame["http_status"] = frame["http_status"].astype("Int64")
    frame["recorded_at"] = pd.to_datetime(frame["recorded_at"]).astype("datetime64[us]")
    con.register("_ledger_rows", frame)
    try:
        con.execute(f"insert into {schema}.ledger by name select * from _ledger_rows")
    finally:
        con.unregister("_ledger_rows")


def held(con: duckdb.DuckDBPyConnection, schema: str, entity: str) -> int:
    """How many records of `entity` CustomerX holds from us (crosswalk rows that were sent).

    Called after `loader.load_entity`, which created the tables."""
    rows = con.execute(
        f"select count(*) from {schema}.crosswalk where entity = ? and state = 'sent'", [entity]
    ).fetchall()
    return int(rows[0][0])


def run_outcomes(con: duckdb.DuckDBPyConnection, schema: str, entity: str, run_id: str, limit: int) -> Any:
    """This run's ledger rows for `entity`, changes and refusals first, as a DataFrame."""
    return con.execute(
        f"""select external_id, outcome, http_status, detail from {schema}.ledger
            where run_id = ? and entity = ?
            order by outcome = 'unchanged', outcome, external_id limit {int(limit)}""",
        [run_id, entity],
    ).fetchdf()
