"""Mapped custom fields of raw Ploomes records, read from the slot their type names (or the
reference name slot an item fills), typed.

Runs as DuckDB SQL over the raw tables: the account's field catalogue (`raw_fields`) gives each
mapped key its slot and kind (`ploomes/fields.py`); each record's `OtherProperties` is read in
either shape Ploomes sends (a list of items with every slot, or only the filled one; a
`{FieldKey: value}` map in webhooks), JSON `null` is absent, and the value is typed as CustomerX
should get it. A value that does not fit its type (text in an integer field) is cleared and
listed, never sent as something else.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import duckdb
import pandas as pd

from ploomes_cx.mapping import Mapping
from ploomes_cx.ploomes.fields import REFERENCE_NAME_SLOTS, TYPED_SQL, FieldType, catalogue_types
from ploomes_cx.runtime.duckdb_io import table_exists


class CatalogueError(Exception):
    """The field catalogue needed to read mapped fields is missing or names an unreadable type."""


def mapped_field_types(con: duckdb.DuckDBPyConnection, m: Mapping) -> dict[str, FieldType]:
    """Slot and kind of every custom field the mapping reads, from the latest `raw_fields` copy."""
    keys = m.read_field_keys
    if not keys:
        return {}
    if not table_exists(con, m.name, "raw_fields"):
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


def sql_literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    """A quoted SQL identifier (FieldKeys hold hyphens)."""
    return '"' + name.replace('"', '""') + '"'


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
    # Each item is parsed into only the slots the mapped fields use (a STRUCT, slots kept as JSON
    # so a number stays a number), and fields are told apart by CASE on literals, not by a join:
    # a join or a filter on the payload makes DuckDB hold every payload, and a million of them do
    # not fit the memory staging gives it.
    by_key = {key: (attr, t) for key, attr, t in fields}
    slots = sorted({t.slot for _, _, t in fields})
    if any(t.references for _, _, t in fields):
        slots = sorted({*slots, *REFERENCE_NAME_SLOTS})
    item_shape = {"FieldKey": "VARCHAR", **dict.fromkeys(slots, "JSON")}
    keys = ", ".join(sql_literal(k) for k in by_key)
    listed = f"list_transform(list_filter(items, lambda p: p.FieldKey in ({keys})), lambda p: {_list_item(by_key)})"
    # the webhook map, parsed the same way, where the list shape found no list
    map_shape = sql_literal(json.dumps({"OtherProperties": dict.fromkeys(by_key, "JSON")}))
    in_map = ", ".join(
        f"{{'attribute': {sql_literal(a)}, 'kind': '{t.kind}', "
        f"'v': json_transform(payload, {map_shape}).OtherProperties.{sql_identifier(k)}, "
        f"'alt': {sql_literal('reference') if t.references else 'null::varchar'}}}"
        for k, (a, t) in by_key.items()
    )
    # One scan. The list is read from `custom_values` (the filled slots only) where the row has it,
    # else from the payload, parsed once into the list shape: there a map (or no OtherProperties)
    # comes out as NULL, and only those rows are parsed again as the map.
    stored = sql_literal(json.dumps([item_shape]))
    whole = sql_literal(json.dumps({"OtherProperties": [item_shape]}))
    con.execute(f"""
        create or replace temp table _cf_slots as
        select id, window_start, f.attribute, f.kind, f.v, f.alt from (
            select id, window_start,
                unnest(case when items is not null then {listed} else [{in_map}] end) as f
            from (
                select id, window_start, payload,
                    case when custom_values is not null then json_transform(custom_values, {stored})
                        else json_transform(payload, {whole}).OtherProperties end as items
                from {view} v
            )
        )
    """)
    return _typed_values(con)


def _list_item(by_key: dict[str, tuple[str, FieldType]]) -> str:
    """SQL of the `{attribute, kind, v, alt}` struct one list item `p` is read into. A field typed
    by its NativeType takes a filled reference name slot first, as a reference's text: the item
    shows which slot it fills, where the type's display name would only be a guess."""

    def case(value: Callable[[FieldType], str]) -> str:
        whens = " ".join(f"when {sql_literal(k)} then {value(t)}" for k, (_, t) in by_key.items())
        return f"case p.FieldKey {whens} end"

    def kind(t: FieldType) -> str:
        if not t.references:
            return sql_literal(t.kind)
        filled = " or ".join(f"p.{sql_identifier(s)} is not null" for s in REFERENCE_NAME_SLOTS)
        return f"case when {filled} then 'reference' else {sql_literal(t.kind)} end"

    def value(t: FieldType) -> str:
        own = f"p.{sql_identifier(t.slot)}"
        if not t.references:
            return own
        return "coalesce(" + ", ".join(f"p.{sql_identifier(s)}" for s in REFERENCE_NAME_SLOTS) + f", {own})"

    attribute = " ".join(f"when {sql_literal(k)} then {sql_literal(a)}" for k, (a, _) in by_key.items())
    return (
        f"{{'attribute': case p.FieldKey {attribute} end, 'kind': {case(kind)}, 'v': {case(value)}, "
        "'alt': null::varchar}"
    )


def _typed(kind: str) -> str:
    """SQL typing the JSON value `v` by the kind named in column `kind`."""
    return f"case {kind} " + " ".join(f"when '{k}' then {sql}" for k, sql in TYPED_SQL.items()) + " end"


def _typed_values(con: duckdb.DuckDBPyConnection) -> tuple[pd.Series, pd.DataFrame]:
    """From the slots collected in `_cf_slots`: each record's JSON object of typed values, and the
    values that did not fit (JSON `null` is absent, an empty text is no value). A map value has
    no slot to tell a reference by: text that does not fit its field's NativeType is taken as a
    reference's text (`alt`) where the field may hold one."""
    con.execute(f"""
        create or replace temp table _cf_values as
        select id, window_start, attribute, v::varchar as raw,
            coalesce({_typed("kind")}, case when json_type(v) = 'VARCHAR' then {_typed("alt")} end) as typed
        from _cf_slots where v is not null and json_type(v) != 'NULL'
    """)
    con.execute("drop table _cf_slots")
    objects = con.execute(
        "select id, json_group_object(attribute, typed)::varchar as attrs from _cf_values "
        "where typed is not null group by id"
    ).fetchnumpy()
    misfits = con.execute(
        "select id as ploomes_id, window_start, attribute, raw as value from _cf_values "
        "where typed is null and trim(json_extract_string(raw::json, '$')) != '' order by id"
    ).fetchdf()
    con.execute("drop table _cf_values")
    # arrays, not rows: a dict of a quarter million tuples took longer than the query
    return pd.Series(objects["attrs"], index=pd.Index(objects["id"]), dtype=object), misfits
