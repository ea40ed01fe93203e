"""The staged tables' columns, the raw view every staging module starts from, and the counts
each keeps: every distinct record extracted is staged, merged into a survivor, or rejected."""

from __future__ import annotations

import duckdb
import pandas as pd

from ploomes_cx.ploomes.entities import ENTITIES
from ploomes_cx.raw.needs import FETCHED_TABLES
from ploomes_cx.reconcile import tombstones
from ploomes_cx.reconcile.origins import PARENT_KINDS
from ploomes_cx.runtime.duckdb_io import has_column, table_exists

CLIENT_COLUMNS = [
    "external_id",
    "ploomes_id",
    "aliases",
    "source",
    "name",
    "name_key",
    "legal_name",
    "document",
    "document_type",
    "external_code",
    "email",
    "phone",
    "custom_attributes",
    "changed_at",
    "window_start",
]
CONTACT_COLUMNS = [
    "external_id",
    "ploomes_id",
    "aliases",
    "client_external_id",
    "name",
    "email",
    "phone",
    "document",
    "external_code",
    "custom_attributes",
    "changed_at",
    "window_start",
]
CONTRACT_COLUMNS = [
    "external_id",
    "ploomes_id",
    "client_external_id",
    "title",
    "value",
    "sale_date",
    "product_name",
    "product_code",
    "custom_attributes",
    "changed_at",
    "window_start",
    "status",
    "status_changed_at",
]
TIMELINE_COLUMNS = [
    "external_id",
    "kind",
    "ploomes_id",
    "client_external_id",
    "occurred_at",
    "title",
    "body",
    "url",
    "changed_at",
    "window_start",
]
CLUSTER_COLUMNS = ["cluster_id", "entity", "kind", "survivor_id", "member_ids", "size", "rule", "score"]
# The Ploomes Id space each raw entity, and each `entity` a staging row or rejection names, is
# in: what a re-stage of some records (docs/incremental-staging.md) keys them by, since a deal
# and a contact may share an Id. Organizations and persons are both Ploomes contacts.
ID_SPACES = {
    "organizations": "contacts",
    "persons": "contacts",
    "deal_contacts": "contacts",
    "organization_contacts": "contacts",
    "deal_persons": "contacts",
    "won_deals": "deals",
    "deal_products": "deals",
}
TIMESTAMP_COLUMNS = {"changed_at", "window_start", "occurred_at", "sale_date", "status_changed_at"}


def shape(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Fixed columns and dtypes, empty or not: timestamps, int64 ids, float64 values, text as object."""
    out = frame.reindex(columns=columns).reset_index(drop=True)
    for col in out.columns:
        if col in TIMESTAMP_COLUMNS:
            out[col] = pd.to_datetime(out[col]).astype("datetime64[us]")
        elif col == "ploomes_id":
            out[col] = out[col].astype("int64")
        elif col == "value":
            out[col] = out[col].astype("float64")
        else:  # copied only where needed: a million-row column costs a copy per step
            values = out[col] if out[col].dtype == object else out[col].astype(object)
            missing = values.isna()
            # most text columns mark a missing value with None already: nothing to replace
            if any(v is not None for v in values[missing].tolist()):
                values = values.where(~missing, None)
            out[col] = values
    return out


def counts(extracted: int, staged: int, merged: int = 0) -> dict[str, int]:
    return {
        "extracted": extracted,
        "staged": staged,
        "merged": merged,
        "rejected": extracted - staged - merged,
    }


def latest(con: duckdb.DuckDBPyConnection, schema: str, entity: str) -> str:
    """SQL for each record's latest version (by change date, then extraction time), from the
    window extracts and the records fetched by Id (`raw_dependencies`, `raw_live`) alike, without the records
    a reconcile found gone from Ploomes (`reconcile/tombstones.py`).

    The latest row per id is picked by `rowid` first and only then joined back to its payload,
    so the window never has to hold a million JSON documents in memory at once.
    """
    sql = _latest(con, schema, entity)
    if not table_exists(con, schema, tombstones.TABLE) or entity not in ENTITIES:
        return sql
    gone = f"select ploomes_id from {schema}.{tombstones.TABLE} where ploomes_set = '{ENTITIES[entity].path}'"
    return f"(select * from {sql} where id not in ({gone}))"


def _latest(con: duckdb.DuckDBPyConnection, schema: str, entity: str) -> str:
    """`latest` before the gone records are taken out."""
    raw = table_exists(con, schema, f"raw_{entity}")
    fetched = [f"{schema}.{t}" for t in FETCHED_TABLES if table_exists(con, schema, t)]
    # the parts of the payload stored apart (`raw/frames.py`) are null where the rows lack them:
    # records fetched by Id, and tables written before they existed; readers use the payload there
    parts_apart = ("head", "custom_values")
    nulls = ", ".join(f"null::varchar as {c}" for c in parts_apart)
    if not raw and not fetched:
        return (
            "(select null::bigint as id, null::timestamp as window_start, null::timestamp as changed_at, "
            f"null::timestamp as extracted_at, null::varchar as payload, {nulls}, "
            "null::ubigint as digest where false)"
        )
    table = f"{schema}.raw_{entity}"
    columns = "id, window_start, changed_at, extracted_at, payload"
    stored = ", ".join(
        c if raw and has_column(con, schema, f"raw_{entity}", c) else f"null::varchar as {c}"
        for c in parts_apart
    )
    # the payload's digest, made when it was read; null in rows written before it existed
    stored += ", " + _digest(con, schema, f"raw_{entity}") if raw else ""
    if not fetched:
        return (
            f"(select {columns}, {stored} from {table} where rowid in "
            f"(select arg_max(rowid, [epoch_us(changed_at), epoch_us(extracted_at)]) from {table} group by id))"
        )
    mine = f"entity = '{entity}' and payload is not null"
    # source 0 is the window extracts, 1.. the tables of records fetched by Id (dependencies, live)
    versions = [
        f"select {src} as src, rowid as rid, id, changed_at, extracted_at from {t} where {mine}"
        for src, t in enumerate(fetched, start=1)
    ]
    if raw:
        versions.insert(0, f"select 0 as src, rowid as rid, id, changed_at, extracted_at from {table}")
    best = (
        f"select arg_max([src, rid], [epoch_us(changed_at), epoch_us(extracted_at), -src]) as pick "
        f"from ({' union all '.join(versions)}) group by id"
    )
    parts = [
        f"select {columns}, {nulls}, {_digest(con, schema, t.split('.', 1)[1])} from {t} where {mine} "
        f"and rowid in (select pick[2] from best where pick[1] = {src})"
        for src, t in enumerate(fetched, start=1)
    ]
    if raw:
        parts.insert(
            0,
            f"select {columns}, {stored} from {table} where rowid in (select pick[2] from best where pick[1] = 0)",
        )
    return f"(with best as ({best}) {' union all '.join(parts)})"


def _digest(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> str:
    return "digest" if has_column(con, schema, table, "digest") else "null::ubigint as digest"


def missing_parents(con: duckdb.DuckDBPyConnection, schema: str) -> dict[str, set[int]]:
    """Parents asked for by Id that Ploomes no longer has, by kind (`contacts`, `deals`, `quotes`)."""
    fetched = [f"{schema}.{t}" for t in FETCHED_TABLES if table_exists(con, schema, t)]
    rows = []
    if fetched:
        every = " union all ".join(f"select entity, id, payload from {t}" for t in fetched)
        rows = con.execute(
            f"""select entity, id from ({every}) where payload is null
                and id not in (select id from ({every}) where payload is not null)"""
        ).fetchall()
    out: dict[str, set[int]] = {}
    for entity, pid in rows:
        out.setdefault(str(entity), set()).add(int(pid))
    for path, kind in PARENT_KINDS.items():  # found gone by a reconcile
        out.setdefault(kind, set()).update(tombstones.gone_ids(con, schema, path))
    return out
