"""What changed since the last staging (`refresh_seen`: the records whose latest version differs
from the one it read) and the children a change reaches (docs/incremental-staging.md).

A contract is made from its deal and the client of the deal's contact; a timeline entry from
itself and the client of its contact, else of its deal's contact. So a child is reached when it
changed, or when a contact (or deal) it points at is reached. A changed child whose contact is
not reached finds that contact's client in the stored `stg_clients` (`stored.py`): the contact's
cluster did not change. (Clients or contacts from deals, where a moved deal can make or unmake a
client, stage everything: `incremental.why_full`.)
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import pandas as pd

from ploomes_cx.mapping import Mapping
from ploomes_cx.plan import Plan
from ploomes_cx.ploomes import payloads
from ploomes_cx.raw.needs import FETCHED_TABLES
from ploomes_cx.runtime.duckdb_io import has_column, table_exists
from ploomes_cx.staging.tables import ID_SPACES, latest, missing_parents

Reach = dict[str, set[int]]  # Id space (`tables.ID_SPACES`) -> Ids


def _deals(con: duckdb.DuckDBPyConnection, m: Mapping) -> pd.DataFrame | None:
    return payloads.deals(con, latest(con, m.name, "deals")) if "deals" in Plan.of(m).extracts else None


def _timeline(con: duckdb.DuckDBPyConnection, m: Mapping) -> Iterable[tuple[str, pd.DataFrame]]:
    for kind in m.timeline:
        source = payloads.TIMELINE_SOURCES[kind]
        yield source.entity, payloads.timeline(con, latest(con, m.name, source.entity), source)


def children(con: duckdb.DuckDBPyConnection, m: Mapping, contacts: set[int], changed: Reach) -> Reach:
    """The children to re-stage: the `changed` ones, and those pointing at a reached contact (or,
    for timeline entries, at a reached deal); and the deals of reached entries without a contact,
    whose client is their deal's (re-staged with them, so the re-stage knows each deal's contact)."""
    out: Reach = {"contacts": set(contacts)}
    deals = _deals(con, m)
    if deals is not None:
        hit = deals["contact_id"].isin(contacts) | deals["person_id"].isin(contacts)
        out["deals"] = set(deals["ploomes_id"][hit].tolist()) | changed.get("deals", set())
    pointed: set[int] = set()
    for entity, frame in _timeline(con, m):
        hit = frame["contact_id"].isin(contacts) | frame["deal_id"].isin(out.get("deals", set()))
        out[entity] = set(frame["ploomes_id"][hit].tolist()) | changed.get(entity, set())
        mine = frame[frame["ploomes_id"].isin(out[entity])]
        pointed |= _ids(mine["deal_id"][mine["contact_id"].isna()])
    if deals is not None:  # an entry without a contact finds its client through its deal's
        out["deals"] |= pointed & set(deals["ploomes_id"].tolist())
    return out


SEEN_TABLE = "staging_seen"  # each record's latest version as the last staging read it


def refresh_seen(con: duckdb.DuckDBPyConnection, m: Mapping) -> tuple[Reach | None, bool]:
    """Digest each record's latest raw version, before this staging reads them, and keep the
    digests for the next staging in place of the last one's: one pass over the raw tables.

    Returns the records whose latest version differs from the one the last staging read (new and
    vanished ones included, by Id space; None when no digests were kept), and whether the parents
    asked for by Id and found gone differ. A window run again reads every record of it again; only
    the ones Ploomes changed differ. A version written between this and the reads is staged now
    and taken for a change next time: staged twice, never missed."""
    _complete_digests(con, m)
    parts = [
        # the window and change date are staged too (a row's `window_start`): a record whose
        # latest version is the same text in another window has changed for staging
        f"select '{entity}' as entity, id, hash(digest, window_start, changed_at) as digest "
        f"from {latest(con, m.name, entity)}"
        for entity in Plan.of(m).entity_extracts
    ]
    con.execute(f"create or replace temp table _ploomes_cx_seen as {' union all '.join(parts)}")
    # parents asked for by Id and found gone: their children's rule depends on it
    gone = [(f"gone:{kind}", i, 0) for kind, ids in missing_parents(con, m.name).items() for i in ids]
    if gone:
        con.executemany("insert into _ploomes_cx_seen values (?, ?, ?)", gone)
    changed: Reach | None = None
    gone_changed = False
    if table_exists(con, m.name, SEEN_TABLE):
        rows = con.execute(
            f"""select coalesce(n.entity, o.entity), coalesce(n.id, o.id)
                from _ploomes_cx_seen n full outer join {m.name}.{SEEN_TABLE} o
                on o.entity = n.entity and o.id = n.id where n.digest is distinct from o.digest"""
        ).fetchall()
        changed = {}
        for entity, pid in rows:
            if str(entity).startswith("gone:"):
                gone_changed = True
            else:
                changed.setdefault(ID_SPACES.get(entity, entity), set()).add(int(pid))
    con.execute(f"create or replace table {m.name}.{SEEN_TABLE} as select * from _ploomes_cx_seen")
    con.execute("drop table _ploomes_cx_seen")
    return changed, gone_changed


def _complete_digests(con: duckdb.DuckDBPyConnection, m: Mapping) -> None:
    """Rows written before payloads had their digest made at extraction (`raw/frames.py`) get
    one now, once: DuckDB's hash of the text. The pass over them reads their payloads; after it,
    a staging reads the digest column alone (`make bench-staging --steps`, `record_digests`, a
    million persons: 0.5 s, against 2.7 s hashing every payload at each staging). Two digests of one text may differ (pandas' and DuckDB's): a record read
    again unchanged is then staged again once, never missed."""
    tables = [f"raw_{e}" for e in Plan.of(m).entity_extracts] + list(FETCHED_TABLES)
    for table in tables:
        if not table_exists(con, m.name, table):
            continue
        if not has_column(con, m.name, table, "digest"):
            con.execute(f"alter table {m.name}.{table} add column digest ubigint")
        con.execute(
            f"update {m.name}.{table} set digest = hash(payload) where digest is null and payload is not null"
        )


def reach_frame(reach: Reach) -> pd.DataFrame:
    """`reach` as the relation `Context.only` reads (`space`, `ploomes_id`)."""
    rows = [(space, int(i)) for space, ids in reach.items() for i in sorted(ids)]
    return pd.DataFrame(rows, columns=["space", "ploomes_id"]).astype({"ploomes_id": "int64"})


def _ids(values: pd.Series) -> set[int]:
    return {int(v) for v in values.dropna().tolist()}
