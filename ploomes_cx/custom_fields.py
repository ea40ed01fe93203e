"""Mapped custom fields of raw Ploomes records, read from the slot their type names, typed.

Runs as DuckDB SQL over the raw tables: the account's field catalogue (`raw_fields`) gives each
mapped key its slot and kind (`ploomes/fields.py`); each record's `OtherProperties` is read in
either shape Ploomes sends (a list of items with every slot, or only the filled one; a
`{FieldKey: value}` map in webhooks), JSON `null` is absent, and the value is typed as CustomerX
should get it. A value that does not fit its type (text in an integer field) is cleared and
listed, never sent as something else.
"""

from __future__ import annotations

import json

import duckdb
import pandas as pd

from ploomes_cx.mapping import Mapping
from ploomes_cx.ploomes.fields import TYPED_SQL, FieldType, catalogue_types


class CatalogueError(Exception):
    """The field catalogue needed to read mapped fields is missing or names an unreadable type."""


def mapped_field_types(con: duckdb.DuckDBPyConnection, m: Mapping) -> dict[str, FieldType]:
    """Slot and kind of every custom field the mapping reads, from the latest `raw_fields` copy."""
    keys = set(m.custom_fields.all_keys())
    if m.uses_external_code_custom_field:
        keys.add(m.external_code_field)
    if not keys:
        return {}
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = 'raw_fields'",
        [m.name],
    ).fetchall()[0][0]
    if not exists:
        raise CatalogueError(
            f"{m.source_path}: custom fields are mapped but the field catalogue {m.name}.raw_fields "
            "has not been read; materialize raw_fields (ploomes-cx sync does) before staging"
        )
    rows = con.execute(
        f"""select payload from {m.name}.raw_fields
            where extracted_at = (select max(extracted_at) from {m.name}.raw_fields)"""
    ).fetchall()
    catalogue = [json.loads(r[0]) for r in rows]
    types, problems = catalogue_types(catalogue, keys, m.ploomes.field_type_slots)
    missing = sorted(keys - {str(f.get("Key")) for f in catalogue})
    problems += [f"field {k!r} is not in the account's field catalogue" for k in missing]
    if problems:
        raise CatalogueError(f"{m.source_path}: " + "; ".join(problems))
    return types


def read_fields(
    con: duckdb.DuckDBPyConnection, view: str, fields: list[tuple[str, str, FieldType]]
) -> tuple[pd.Series, pd.DataFrame]:
    """Per record, a JSON object `{attribute: typed value}` of the given fields (absent ones left out),
    and the values that did not fit their type (`ploomes_id`, `window_start`, `attribute`, `value`).

    `fields`: (Ploomes FieldKey, attribute name, its type). `view`: SQL of the latest records.
    """
    empty = pd.DataFrame(columns=["ploomes_id", "window_start", "attribute", "value"])
    if not fields:
        return pd.Series(dtype=object), empty
    spec = pd.DataFrame(
        [(key, attr, t.slot, t.kind) for key, attr, t in fields],
        columns=["field_key", "attribute", "slot", "kind"],
    )
    typed = "case m.kind " + " ".join(f"when '{k}' then {sql}" for k, sql in TYPED_SQL.items()) + " end"
    con.register("_cf_map", spec)
    try:
        con.execute(f"""
            create or replace temp table _cf_values as
            with records as (
                select id, window_start, payload->'$.OtherProperties' as props from {view} v
            ), items as (
                select id, window_start, p->>'$.FieldKey' as field_key, p as item
                from records, unnest(json_extract(props, '$[*]')) as t(p)
            ), slots as (
                select i.id, i.window_start, m.attribute, m.kind, json_extract(i.item, '$.' || m.slot) as v
                from items i join _cf_map m using (field_key)
                union all  -- webhook shape: {{FieldKey: value}}
                select r.id, r.window_start, m.attribute, m.kind,
                    json_extract(r.props, '$."' || m.field_key || '"') as v
                from records r cross join _cf_map m where json_type(r.props) = 'OBJECT'
            )
            select id, window_start, attribute, v::varchar as raw, {typed} as typed
            from slots m where v is not null and json_type(v) != 'NULL'
        """)
        rows = con.execute(
            "select id, json_group_object(attribute, typed)::varchar from _cf_values "
            "where typed is not null group by id"
        ).fetchall()
        misfits = con.execute(
            "select id as ploomes_id, window_start, attribute, raw as value from _cf_values "
            "where typed is null and trim(json_extract_string(raw::json, '$')) != '' order by id"
        ).fetchdf()
        con.execute("drop table _cf_values")
    finally:
        con.unregister("_cf_map")
    return pd.Series({pid: text for pid, text in rows}, dtype=object), misfits
