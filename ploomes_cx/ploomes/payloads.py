"""What Ploomes sends, and how staging reads it out of the stored JSON payloads.

Each reader takes a SQL view of raw rows (`staging/tables.latest`: `id, window_start,
changed_at, payload` and the parts stored apart, `head` and `custom_values`) and returns the few
fields staging needs, parsed once: a million contact payloads do not fit in memory twice. The
standard fields are read from `head`, the payload without its custom fields, where the row has it
(`raw/frames.py`). Field names and shapes are ploomes-api.md §4-§7.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import duckdb
import pandas as pd

from ploomes_cx.ploomes.custom_fields import sql_identifier, sql_literal

# EntityId of the record a custom field belongs to (ploomes-api.md §6)
CONTACT_ENTITY, DEAL_ENTITY, ORDER_ENTITY = 1, 2, 4
WON = 2  # Deal.StatusId (§7)
# the JSON the standard (not custom) fields are read from: the payload's head where stored
STANDARD = "coalesce(head, payload)"

# What staging reads of a contact, by JSONPath; every path is extracted in one parse of the
# payload (a payload with every custom-field slot is kilobytes; a million of them are gigabytes).
CONTACT_PATHS = {
    "type_id": "$.TypeId",
    "name_raw": "$.Name",
    "legal_name": "$.LegalName",
    "register": "$.Register",
    "cnpj": "$.CNPJ",
    "cpf": "$.CPF",
    "email_raw": "$.Email",
    "key": "$.Key",
    "company_id": "$.CompanyId",
    "contact_name": "$.ContactName",
    "phone_raw": "$.Phones[0].PhoneNumber",
}


def contacts_sql(view: str, code_field: str | None = None, code_slot: str = "") -> str:
    """SQL of the contact (organization or person) fields staging reads, one row per record;
    `code_field` is the custom field holding the external code, read from its type's value slot
    in the list shape or, as webhook payloads send it, the map shape (`OtherProperties."key"`)."""
    paths = ", ".join(sql_literal(path) for path in CONTACT_PATHS.values())
    at = {name: f"vals[{i}]" for i, name in enumerate(CONTACT_PATHS, start=1)}
    code, extra = at["key"], ""
    if code_field:
        shape = json.dumps({"OtherProperties": [{"FieldKey": "VARCHAR", code_slot: "JSON"}]})
        member = sql_literal('$.OtherProperties."' + code_field + '"')
        extra = (
            f", json_transform(payload, {sql_literal(shape)}) as j, "
            f"json_extract_string(payload, {member}) as mapped"
        )
        found = (
            f"list_filter(j.OtherProperties, lambda x: x.FieldKey = {sql_literal(code_field)})[1]"
            f".{sql_identifier(code_slot)}"
        )
        code = f"coalesce(json_extract_string({found}, '$'), mapped)"
    # (I) Register is read first, then the separate CNPJ / CPF fields (ploomes-api.md §6).
    return f"""
        with p as (
            select id, window_start, changed_at,
                json_extract_string({STANDARD}, [{paths}]) as vals{extra}
            from {view} v
        )
        select id as ploomes_id, window_start, changed_at, try_cast({at["type_id"]} as integer) as type_id,
            {at["name_raw"]} as name_raw, {at["legal_name"]} as legal_name,
            coalesce(nullif({at["register"]}, ''), nullif({at["cnpj"]}, ''), nullif({at["cpf"]}, '')) as document_raw,
            {at["email_raw"]} as email_raw, {at["phone_raw"]} as phone_raw, {code} as code_raw,
            try_cast({at["company_id"]} as bigint) as company_id, {at["contact_name"]} as contact_name
        from p
    """


def deals(con: duckdb.DuckDBPyConnection, view: str) -> pd.DataFrame:
    return con.execute(f"""
        select id as ploomes_id, window_start, changed_at,
            (d->>'$.StatusId')::int as status_id, (d->>'$.ContactId')::bigint as contact_id,
            (d->>'$.PersonId')::bigint as person_id, d->>'$.Title' as title,
            (d->>'$.Amount')::double as amount, d->>'$.FinishDate' as finish_date,
            (d->>'$.LastQuoteId')::bigint as last_quote_id
        from (select *, {STANDARD} as d from {view} v) order by ploomes_id
    """).fetchdf()


def product_lines(con: duckdb.DuckDBPyConnection, view: str, kind: str) -> pd.DataFrame:
    """One row per product line of each order or quote (`Products`, §7)."""
    return con.execute(f"""
        select {sql_literal(kind)} as kind, o.id as parent_id, (o.payload->>'$.DealId')::bigint as deal_id,
            o.window_start, o.changed_at, (line->>'$.Id')::bigint as line_id,
            line->>'$.ProductName' as product_name, line->>'$.Product.Code' as product_code,
            (line->>'$.Total')::double as value
        from {view} o, unnest(cast(json_extract(o.payload, '$.Products') as JSON[])) as t(line)
    """).fetchdf()


@dataclass(frozen=True)
class TimelineSource:
    """Where a timeline kind's fields are in its Ploomes entity's payload (SQL expressions)."""

    entity: str
    prefix: str
    when: str
    title: str
    body: str
    url: str = "null"


TIMELINE_SOURCES = {
    "notes": TimelineSource("notes", "note", "payload->>'$.Date'", "'Nota'", "payload->>'$.Content'"),
    "activities": TimelineSource(
        "tasks", "activity", "payload->>'$.DateTime'", "payload->>'$.Title'", "payload->>'$.Description'"
    ),
    "attachments": TimelineSource(
        "attachments",
        "attachment",
        "payload->>'$.CreateDate'",
        "coalesce(payload->>'$.Name', payload->>'$.FileName')",
        "payload->>'$.ContentType'",
        "payload->>'$.Url'",
    ),
}


def timeline(con: duckdb.DuckDBPyConnection, view: str, source: TimelineSource) -> pd.DataFrame:
    return con.execute(f"""
        select id as ploomes_id, window_start, changed_at, {source.when} as occurred_raw,
            {source.title} as title, {source.body} as body, {source.url} as url,
            (payload->>'$.ContactId')::bigint as contact_id, (payload->>'$.DealId')::bigint as deal_id
        from {view} v order by ploomes_id
    """).fetchdf()
