"""The Ploomes records a reconcile found gone, in `<mapping>.ploomes_gone`, and the CustomerX
records reconcile reads: one table owned here, read by staging.

A gone record is a fact about Ploomes, kept so that staging stops staging its last extracted
version (a deleted deal would otherwise look won forever, and a cancelled contract be
reactivated by the next sync). An Id listed again later (restored in Ploomes) leaves the table.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import duckdb

from ploomes_cx.reconcile.origins import Origin
from ploomes_cx.runtime.duckdb_io import table_exists

TABLE = "ploomes_gone"


@dataclass(frozen=True)
class Held:
    """A record CustomerX holds from us (a crosswalk row that was sent)."""

    entity: str
    external_id: str
    client: str | None  # our client's external id, for contacts, contracts and timeline


def ensure(con: duckdb.DuckDBPyConnection, schema: str) -> None:
    con.execute(f"create schema if not exists {schema}")
    con.execute(f"""create table if not exists {schema}.{TABLE} (
        ploomes_set varchar, ploomes_id bigint, deleted_at varchar, found_at timestamp, run_id varchar,
        primary key (ploomes_set, ploomes_id))""")


def held(con: duckdb.DuckDBPyConnection, schema: str, before: dt.datetime) -> list[Held]:
    """Records CustomerX holds from us, last written `before` the listing began: one a sync wrote
    since may come from a record created after its set was listed, and waits for the next run."""
    if not table_exists(con, schema, "crosswalk"):
        return []
    rows = con.execute(
        f"""select entity, external_id, body from {schema}.crosswalk
            where state = 'sent' and updated_at < ? order by entity, external_id""",
        [before],
    ).fetchall()
    return [Held(str(e), str(x), (json.loads(b) if b else {}).get("external_id_client")) for e, x, b in rows]


def held_entities(con: duckdb.DuckDBPyConnection, schema: str) -> set[str]:
    """Which CustomerX entities hold records from us: what the listing must cover."""
    if not table_exists(con, schema, "crosswalk"):
        return set()
    rows = con.execute(f"select distinct entity from {schema}.crosswalk where state = 'sent'").fetchall()
    return {str(r[0]) for r in rows}


def known(con: duckdb.DuckDBPyConnection, schema: str) -> set[Origin]:
    if not table_exists(con, schema, TABLE):
        return set()
    rows = con.execute(f"select ploomes_set, ploomes_id from {schema}.{TABLE}").fetchall()
    return {Origin(str(s), int(i)) for s, i in rows}


def remember(
    con: duckdb.DuckDBPyConnection, schema: str, gone: dict[Origin, str | None], run_id: str
) -> None:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for o, when in gone.items():
        con.execute(
            f"insert or ignore into {schema}.{TABLE} values (?, ?, ?, ?, ?)",
            [o.ploomes_set, o.ploomes_id, when, now, run_id],
        )


def forget(con: duckdb.DuckDBPyConnection, schema: str, restored: set[Origin]) -> None:
    for o in restored:
        con.execute(
            f"delete from {schema}.{TABLE} where ploomes_set = ? and ploomes_id = ?",
            [o.ploomes_set, o.ploomes_id],
        )


def gone_ids(con: duckdb.DuckDBPyConnection, schema: str, ploomes_set: str) -> set[int]:
    """The Ids of one Ploomes set found gone (for staging)."""
    if not table_exists(con, schema, TABLE):
        return set()
    rows = con.execute(
        f"select ploomes_id from {schema}.{TABLE} where ploomes_set = ?", [ploomes_set]
    ).fetchall()
    return {int(r[0]) for r in rows}


def count(con: duckdb.DuckDBPyConnection, schema: str) -> int:
    if not table_exists(con, schema, TABLE):
        return 0
    return int(con.execute(f"select count(*) from {schema}.{TABLE}").fetchall()[0][0])
