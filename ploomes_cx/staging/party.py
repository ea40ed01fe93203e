"""Organizations and persons ("parties") read once, normalized, their custom fields read for the
tables they feed; every client and contact is made from these frames."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ploomes_cx.ploomes import payloads
from ploomes_cx.staging.context import Context
from ploomes_cx.staging.normalize import (
    normalize_codes,
    normalize_documents,
    normalize_emails,
    normalize_names,
    normalize_phones,
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
        return pd.concat(
            [
                f.set_index("ploomes_id")["company_id"].astype("float64")
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
        return normalize_party(_read(ctx, view), entity, ctx.rejects)

    orgs = party("organizations")
    persons = party("persons") if "persons" in extracts else orgs.iloc[0:0].copy()
    deals_view = ctx.view("deals")
    deals = payloads.deals(ctx.con, deals_view) if "deals" in extracts else None
    return Parties(orgs, persons, deals, deals_view, _joined(client_attrs), _joined(contact_attrs))


def _read(ctx: Context, view: str) -> pd.DataFrame:
    m = ctx.m
    if m.uses_external_code_custom_field:
        key = m.external_code_field
        return payloads.contacts(ctx.con, view, key, ctx.types[key].slot)
    return payloads.contacts(ctx.con, view)


def normalize_party(frame: pd.DataFrame, entity: str, rejects: Rejects) -> pd.DataFrame:
    """Normalized identifiers and contact data; field problems are listed and the field cleared."""
    docs = normalize_documents(frame["document_raw"])
    emails = normalize_emails(frame["email_raw"])
    phones = normalize_phones(frame["phone_raw"])
    names = normalize_names(frame["name_raw"])
    codes = normalize_codes(frame["code_raw"])
    for column, source, reason in (
        ("document", "document_raw", docs["document_reason"]),
        ("email", "email_raw", emails["email_reason"]),
        ("phone", "phone_raw", phones["phone_reason"]),
    ):
        bad = reason.notna()
        rejects.add(entity, frame, bad, column, frame[source], reason, "field_cleared")
    # Keep only what staging reads: raw values of rejected fields are already in `rejects`.
    kept = frame[["ploomes_id", "window_start", "changed_at", "legal_name", "company_id", "contact_name"]]
    # the raw name is only ever shown for records without a usable name
    names.insert(0, "name_raw", frame["name_raw"].where(names["name_key"].isna(), None))
    out = pd.concat(
        [kept, docs[["document", "document_type"]], emails[["email"]], phones[["phone"]], names, codes],
        axis=1,
    )
    out["changed_at"] = pd.to_datetime(out["changed_at"])
    return out
