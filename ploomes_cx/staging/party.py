"""Organizations and persons ("parties") read once, normalized, their custom fields read for the
tables they feed; every client and contact is made from these frames."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ploomes_cx.ploomes import payloads
from ploomes_cx.ploomes.custom_fields import sql_literal
from ploomes_cx.runtime.duckdb_io import fetch_frame
from ploomes_cx.staging.context import Context
from ploomes_cx.staging.normalize import (
    Normalizer,
    normalize_codes,
    normalize_documents,
    normalize_emails,
    normalize_names,
    normalize_phones,
)
from ploomes_cx.staging.normalize_sql import (
    Field,
    code_field,
    document_field,
    email_field,
    name_field,
    normalized,
    phone_field,
)
from ploomes_cx.staging.rejects import Rejects

# which Ploomes party entities each table's records come from, by the mapping's `source`
PARTY_SOURCES = {
    "organizations": ["organizations"],
    "persons": ["persons"],
    "deals": ["organizations", "persons"],
}
CONTACT_PARTY_SOURCES = {"organizations": ["organizations"], "persons": ["persons"], "deals": ["persons"]}


@dataclass
class Parties:
    orgs: pd.DataFrame
    persons: pd.DataFrame
    deals: pd.DataFrame | None
    deals_view: str
    client_attrs: pd.Series
    contact_attrs: pd.Series

    def company_of(self) -> pd.Series:
        """Ploomes contact id -> its organization's id (CompanyId), for organizations and persons."""
        # built from the two columns alone: set_index would copy every column of a million rows
        return pd.concat(
            [
                pd.Series(f["company_id"].to_numpy(dtype="float64", na_value=np.nan), index=f["ploomes_id"])
                for f in (self.orgs, self.persons)
                if len(f)
            ]
            or [pd.Series(dtype="float64")]
        )

    def won_deals(self) -> pd.DataFrame:
        if self.deals is None:
            return pd.DataFrame(columns=["ploomes_id", "status_id", "contact_id", "person_id"])
        return self.deals[self.deals["status_id"] == payloads.WON]


def _joined(parts: list[pd.Series]) -> pd.Series:
    return pd.concat([s for s in parts if len(s)] or [pd.Series(dtype=object)])


def read_parties(ctx: Context, extracts: tuple[str, ...]) -> Parties:
    client_attrs: list[pd.Series] = []
    contact_attrs: list[pd.Series] = []

    def party(entity: str) -> pd.DataFrame:
        view = ctx.view(entity)
        if entity in PARTY_SOURCES[ctx.m.clients.source]:
            client_attrs.append(ctx.custom_attributes(view, "clients", entity))
        if entity in CONTACT_PARTY_SOURCES[ctx.m.contacts.source]:
            contact_attrs.append(ctx.custom_attributes(view, "contacts", entity))
        keyed = entity in PARTY_SOURCES[ctx.m.clients.source]
        return normalize_party(_read(ctx, view, keyed), entity, ctx.rejects)

    orgs = party("organizations")
    persons = party("persons") if "persons" in extracts else orgs.iloc[0:0].copy()
    deals_view = ctx.view("deals")
    deals = payloads.deals(ctx.con, deals_view) if "deals" in extracts else None
    return Parties(orgs, persons, deals, deals_view, _joined(client_attrs), _joined(contact_attrs))


# Per party field, its SQL normalizer (reading the raw column, producing the columns named by its
# outputs) and the Python normalizer that cleans the values SQL flags and leaves to it. Names
# come first: in another order DuckDB ran the query on fewer threads.
PARTY_FIELDS: tuple[tuple[Field, Normalizer], ...] = (
    (name_field("name_raw"), normalize_names),
    (document_field("document_raw"), normalize_documents),
    (email_field("email_raw"), normalize_emails),
    (phone_field("phone_raw"), normalize_phones),
    (code_field("code_raw"), normalize_codes),
)
UNKEYED_NAME = name_field("name_raw", keyed=False)  # the name of a party never matched by name
# when a raw value is still needed after SQL: for Python, for the rejected list, or for display
KEEP_RAW = {
    "document_raw": "document_py or document_reason is not null",
    "email_raw": "email_py or email_reason is not null",
    "phone_raw": "phone_py or phone_reason is not null",
    "name_raw": "name_py or name_key is null",
    "code_raw": "external_code_py",
}
CLEARED = (("document", "document_raw"), ("email", "email_raw"), ("phone", "phone_raw"))


def _read(ctx: Context, view: str, keyed: bool = True) -> pd.DataFrame:
    """The party's fields, normalized in the query that reads the payloads (`normalize_sql.py`),
    with the raw text of a value kept only where something still needs it.

    Not `keyed` (a party that feeds no clients, so is never matched by name): `name_key` only
    says whether there is one, '' standing for a key. Python keeps one empty string, so a million
    contacts do not hold a million keys they never read (90 MB of the million-person peak)."""
    m = ctx.m
    if m.uses_external_code_custom_field:
        key = m.external_code_field
        source = payloads.contacts_sql(view, key, ctx.types[key].slot)
    else:
        source = payloads.contacts_sql(view)
    fields = [UNKEYED_NAME if f.name == "name" and not keyed else f for f, _ in PARTY_FIELDS]
    # a column with a closed set of values (an ENUM) arrives as one shared string per value,
    # not one per row (a million `cpf`s are 50 MB)
    closed = {column: values for f in fields for column, values in f.closed}
    outputs = [
        f"cast({c} as enum({', '.join(map(sql_literal, closed[c]))})) as {c}" if c in closed else c
        for f in fields
        for c in f.outputs
    ]
    flags = [f"{f.name}_py" for f in fields]
    raws = [f"case when {when} then {raw} end as {raw}" for raw, when in KEEP_RAW.items()]
    sql = f"""select ploomes_id, window_start, changed_at, legal_name, company_id, contact_name,
            {", ".join(outputs + flags + raws)}
        from {normalized(f"({source})", fields)}"""
    # sorted here, not in SQL: DuckDB's sort of a million parsed rows needs more than its share
    frame = fetch_frame(ctx.con, sql, sort_by="ploomes_id")
    for column in closed:
        shared = frame[column].astype(object)
        frame[column] = shared.where(shared.notna(), None)
    return frame


def normalize_party(frame: pd.DataFrame, entity: str, rejects: Rejects) -> pd.DataFrame:
    """Values SQL left flagged are cleaned in Python; field problems are listed and the field
    cleared."""
    for field, python in PARTY_FIELDS:
        flagged = frame.pop(f"{field.name}_py").astype(bool)
        if flagged.any():
            fixed = python(frame.loc[flagged, field.raw])
            for column in field.outputs:
                if frame[column].dtype != object:
                    frame[column] = frame[column].astype(object)
                frame.loc[flagged, column] = fixed[column]
    for column, source in CLEARED:
        reason = frame[f"{column}_reason"]
        rejects.add(entity, frame, reason.notna(), column, frame[source], reason, "field_cleared")
    # the raw name is only ever shown for records without a usable name
    frame["name_raw"] = frame["name_raw"].where(frame["name_key"].isna(), None)
    dropped = [raw for raw in KEEP_RAW if raw != "name_raw"]
    dropped += [f"{c}_reason" for c, _ in CLEARED]
    frame = frame.drop(columns=dropped)
    frame["changed_at"] = pd.to_datetime(frame["changed_at"])
    return frame
