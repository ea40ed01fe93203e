"""The load's memory, in DuckDB next to the staging tables: crosswalk and ledger.

`crosswalk` maps each record we own (entity, our external id) to its CustomerX id, with the
hash and body last sent. A row is written *before* a create (`state = pending`); the rows of
calls that landed (`sent`) are written a few at a time (`Crosswalk`). A run killed at any point
leaves in doubt only the records of its last second or so: a pending one is looked up in
CustomerX before it is created again (load/adoption.py), an update is sent again. Nothing is
created twice.

`ledger` keeps every record's outcome per run: created, updated, adopted, unchanged, rejected
(by CustomerX, with status and body, or by us before any call), failed (after retries),
waiting_for_client (its client is not in CustomerX yet: no call).

`contract_status` holds the contracts that are not simply active: `cancelled` (their deal left
won and `contracts.on_leave_won: cancel` cancelled them) or `left_won` (kept by `keep`).

`refusals` remembers, per record, the `sync` command in which CustomerX last refused it (and
the body's hash), so one command sends a refused record once, not once per window.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import duckdb
import pandas as pd

# the crosswalk state of a client merged away after it was loaded and kept in CustomerX
# (load/merges.py): CustomerX holds it under our external id, and no sync writes it
MERGED = "merged"
LEDGER_COLUMNS = ["run_id", "entity", "external_id", "outcome", "http_status", "detail", "recorded_at"]


@dataclass
class Known:
    customerx_id: int | None
    content_hash: str | None
    body: dict[str, Any] | None
    state: str


def now() -> dt.datetime:
    """UTC without an offset, as every timestamp of these tables."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def ensure(con: duckdb.DuckDBPyConnection, schema: str) -> None:
    con.execute(f"create schema if not exists {schema}")
    con.execute(f"""create table if not exists {schema}.crosswalk (
        entity varchar, external_id varchar, customerx_id bigint, content_hash varchar, body varchar,
        state varchar, updated_at timestamp, run_id varchar, primary key (entity, external_id))""")
    con.execute(f"""create table if not exists {schema}.refusals (
        entity varchar, external_id varchar, content_hash varchar, sync_id varchar, http_status integer,
        recorded_at timestamp, primary key (entity, external_id))""")
    con.execute(f"""create table if not exists {schema}.contract_status (
        external_id varchar primary key, status varchar, changed_at timestamp, run_id varchar)""")
    con.execute(f"""create table if not exists {schema}.ledger (
        run_id varchar, entity varchar, external_id varchar, outcome varchar, http_status integer,
        detail varchar, recorded_at timestamp)""")


def read(con: duckdb.DuckDBPyConnection, schema: str, entity: str) -> dict[str, Known]:
    rows = con.execute(
        f"select external_id, customerx_id, content_hash, body, state from {schema}.crosswalk where entity = ?",
        [entity],
    ).fetchall()
    return {r[0]: Known(r[1], r[2], json.loads(r[3]) if r[3] else None, r[4]) for r in rows}


def _json(body: dict[str, Any] | None) -> str | None:
    return None if body is None else json.dumps(body, ensure_ascii=False)


def _write(con: duckdb.DuckDBPyConnection, schema: str, rows: list[tuple[Any, ...]]) -> None:
    """One statement for many rows: DuckDB spends about 2.5 ms on any single-row insert."""
    if rows:
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(rows))
        con.execute(
            f"insert or replace into {schema}.crosswalk values {values}", [v for r in rows for v in r]
        )


@dataclass
class Crosswalk:
    """One entity's crosswalk writes in one load.

    A `pending` row is written at once, with whatever waits: it must be on disk before the call
    it announces. The rows of calls that landed wait for the next pending row, for `BATCH` of
    them, or for `SECONDS`, whichever comes first. Written one by one they cost about as much as
    the calls against a fast CustomerX (`python -m benchmarks.crosswalk`). A kill
    loses only the rows that waited, which the next run settles as the module docstring says."""

    con: duckdb.DuckDBPyConnection
    schema: str
    entity: str
    run_id: str
    waiting: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    since: float = 0.0

    BATCH: ClassVar[int] = 50
    SECONDS: ClassVar[float] = 1.0

    def remember(
        self, ext: str, cx_id: Any, digest: str | None, body: dict[str, Any] | None, state: str
    ) -> None:
        if not self.waiting:
            self.since = time.monotonic()
        self.waiting[ext] = (self.entity, ext, cx_id, digest, _json(body), state, now(), self.run_id)
        if (
            state != "sent"
            or len(self.waiting) >= self.BATCH
            or time.monotonic() - self.since >= self.SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        rows, self.waiting = list(self.waiting.values()), {}
        _write(self.con, self.schema, rows)

    def hand_over(self, customerx_id: int, external_id: str) -> None:
        """The record merged into `external_id` no longer holds `customerx_id`: its survivor does."""
        self.flush()
        self.con.execute(
            f"delete from {self.schema}.crosswalk where entity = ? and customerx_id = ? and external_id != ?",
            [self.entity, customerx_id, external_id],
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


def refusals(
    con: duckdb.DuckDBPyConnection, schema: str, entity: str, sync_id: str
) -> dict[str, tuple[str, int]]:
    """Records CustomerX refused earlier in this `sync` command: external id -> (hash, status)."""
    rows = con.execute(
        f"select external_id, content_hash, http_status from {schema}.refusals where entity = ? and sync_id = ?",
        [entity, sync_id],
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def remember_refusal(
    con: duckdb.DuckDBPyConnection,
    schema: str,
    entity: str,
    external_id: str,
    content_hash: str,
    sync_id: str,
    status: int,
) -> None:
    con.execute(
        f"insert or replace into {schema}.refusals values (?, ?, ?, ?, ?, ?)",
        [entity, external_id, content_hash, sync_id, status, now()],
    )


def sent_ids(con: duckdb.DuckDBPyConnection, schema: str, entity: str) -> set[str]:
    """Our external ids of `entity` that CustomerX holds."""
    rows = con.execute(
        f"select external_id from {schema}.crosswalk where entity = ? and state = 'sent'", [entity]
    ).fetchall()
    return {r[0] for r in rows}


def owners(con: duckdb.DuckDBPyConnection, schema: str, entity: str) -> dict[int, str]:
    """CustomerX id -> our external id holding it, for `entity`: never adopted by another record."""
    rows = con.execute(
        f"select customerx_id, external_id from {schema}.crosswalk where entity = ? and customerx_id is not null",
        [entity],
    ).fetchall()
    return {int(r[0]): str(r[1]) for r in rows}


def held(con: duckdb.DuckDBPyConnection, schema: str, entity: str) -> int:
    """How many records of `entity` CustomerX holds from us (crosswalk rows that were sent).

    Called after `loop.EntityLoad.run`, which created the tables."""
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


def contract_statuses(con: duckdb.DuckDBPyConnection, schema: str) -> dict[str, str]:
    """Contracts that are not simply active: `cancelled` by us, or `left_won` (kept by policy)."""
    rows = con.execute(f"select external_id, status from {schema}.contract_status").fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def set_contract_status(
    con: duckdb.DuckDBPyConnection, schema: str, external_id: str, status: str | None, run_id: str
) -> None:
    """Remember a contract's status now (autocommit); None: active again."""
    con.execute(f"delete from {schema}.contract_status where external_id = ?", [external_id])
    if status is not None:
        con.execute(
            f"insert into {schema}.contract_status values (?, ?, ?, ?)",
            [external_id, status, now(), run_id],
        )


def set_state(
    con: duckdb.DuckDBPyConnection, schema: str, entity: str, external_id: str, state: str, run_id: str
) -> None:
    """Change one crosswalk row's state, keeping what CustomerX holds (id, hash, body)."""
    con.execute(
        f"update {schema}.crosswalk set state = ?, updated_at = ?, run_id = ? where entity = ? and external_id = ?",
        [state, now(), run_id, entity, external_id],
    )


def forget(con: duckdb.DuckDBPyConnection, schema: str, entity: str, external_id: str) -> None:
    """CustomerX no longer holds this record (we deleted it): the next sync would create it anew."""
    con.execute(f"delete from {schema}.crosswalk where entity = ? and external_id = ?", [entity, external_id])
    if entity == "contracts":
        con.execute(f"delete from {schema}.contract_status where external_id = ?", [external_id])


def customerx_id(con: duckdb.DuckDBPyConnection, schema: str, entity: str, external_id: str) -> int | None:
    """The CustomerX id the crosswalk knows for one record of ours."""
    row = con.execute(
        f"select customerx_id from {schema}.crosswalk where entity = ? and external_id = ?",
        [entity, external_id],
    ).fetchall()  # fetched whole: an unfinished result blocks the connection's next statement
    return None if not row or row[0][0] is None else int(row[0][0])
