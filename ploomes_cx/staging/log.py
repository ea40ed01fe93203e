"""`<mapping>.staging_log`: one row per staging, kept between runs, so the next one knows what
changed since (docs/incremental-staging.md).

What changed is what the raw tables hold now against a digest of each record's latest version
taken as the last staging began (`reach.refresh_seen`); the mapping, the mapped custom fields' types
and the decisions are compared by the digests kept here.

A staging writes a `started` row first and its own row once its tables are written, so one
stopped halfway (its tables partly written) is seen as such and the next stages everything.
Just before its own row it writes `<mapping>.staging_decided`: the Ids its decisions named, which
the next staging stages again if the decisions changed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

import duckdb

from ploomes_cx.decisions import Decision
from ploomes_cx.mapping import Mapping
from ploomes_cx.runtime.duckdb_io import one_row, table_exists

TABLE = "staging_log"
# the Ids the decisions named when the last staging ran (`record_decided`)
DECIDED_TABLE = "staging_decided"


@dataclass(frozen=True)
class StagingMark:
    run_id: str
    started_at: dt.datetime  # UTC, naive, as `extracted_at` is stored
    mode: str  # started | full | incremental
    reason: str
    mapping_digest: str
    decisions_digest: str
    counts: dict[str, dict[str, int]]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# Raised when what a staging keeps for the next one changes shape (the identity index's links,
# the record digests): a state folder staged by an earlier version then stages everything once
STAGING_FORMAT = 3


def mapping_digest(m: Mapping, field_types: dict[str, object]) -> str:
    """What a staging was computed under: any change to the mapping, to the type of a mapped
    custom field in Ploomes (it decides how every record's value is read), or to what a staging
    keeps for the next (`STAGING_FORMAT`) stages everything."""
    text = (
        f"{STAGING_FORMAT}:"
        + m.model_dump_json()
        + repr(sorted((k, repr(v)) for k, v in field_types.items()))
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def decisions_digest(decisions: list[Decision]) -> str:
    """Every field of every decision: the duplicate report quotes a decision's line and who made
    it (`survivors.py`), so re-typing one, or a blank line above it, changes rows too."""
    text = json.dumps(
        [(d.line, d.decision, list(d.ids), d.note, d.decided_by, d.decided_at) for d in decisions]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def last(con: duckdb.DuckDBPyConnection, schema: str) -> StagingMark | None:
    if not table_exists(con, schema, TABLE):
        return None
    row = one_row(
        con,
        f"""select run_id, started_at, mode, reason, mapping_digest, decisions_digest, counts
            from {schema}.{TABLE} order by recorded_at desc limit 1""",
    )
    if row is None:
        return None
    return StagingMark(*row[:6], counts=json.loads(row[6]))


def record(con: duckdb.DuckDBPyConnection, schema: str, mark: StagingMark) -> None:
    con.execute(f"""create table if not exists {schema}.{TABLE} (
        run_id varchar, started_at timestamp, mode varchar, reason varchar,
        mapping_digest varchar, decisions_digest varchar, counts varchar, recorded_at timestamp)""")
    con.execute(
        f"insert into {schema}.{TABLE} values (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            mark.run_id,
            mark.started_at,
            mark.mode,
            mark.reason,
            mark.mapping_digest,
            mark.decisions_digest,
            json.dumps(mark.counts),
            utc_now(),
        ],
    )


def record_decided(con: duckdb.DuckDBPyConnection, schema: str, digest: str, ids: frozenset[int]) -> None:
    """The Ids the decisions named at this staging, under the decisions' digest. When the
    decisions change, the next staging stages again what those Ids and the ones named now reach
    (a withdrawn decision's records included) instead of every record."""
    con.execute(
        f"create or replace table {schema}.{DECIDED_TABLE} (decisions_digest varchar, ploomes_id bigint)"
    )
    rows = [(digest, i) for i in sorted(ids)] or [(digest, None)]
    con.executemany(f"insert into {schema}.{DECIDED_TABLE} values (?, ?)", rows)


def decided(con: duckdb.DuckDBPyConnection, schema: str, digest: str) -> set[int] | None:
    """The Ids the last staging's decisions named; None when it kept none under `digest` (its
    mark's): a state folder staged by an earlier version, or a staging stopped in between."""
    if not table_exists(con, schema, DECIDED_TABLE):
        return None
    rows = con.execute(f"select decisions_digest, ploomes_id from {schema}.{DECIDED_TABLE}").fetchall()
    if not rows or any(kept != digest for kept, _ in rows):
        return None
    return {int(i) for _, i in rows if i is not None}
