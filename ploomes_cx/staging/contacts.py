"""Staged contacts: the mapping's contact source, each on a staged client, deduplicated, and
held to CustomerX's rules before any call (customerx-api.md §8.2): an e-mail is required and
unique in the account, and (phone, client) is unique."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ploomes_cx.decisions import Decision, all_decided, decided_pairs
from ploomes_cx.runtime.duckdb_io import table_exists
from ploomes_cx.staging.clients import ClientResolver, client_owner
from ploomes_cx.staging.context import Context
from ploomes_cx.staging.dedupe import groups_of
from ploomes_cx.staging.normalize import normalize_names
from ploomes_cx.staging.party import Parties
from ploomes_cx.staging.survivors import candidate_row, merge_duplicates
from ploomes_cx.staging.tables import CONTACT_COLUMNS, counts, shape

# what deduplicating and staging contacts read once the nameless are rejected: the party frame's
# other columns are not copied (a million names' keys alone are 70 MB)
WORK_COLUMNS = [
    "ploomes_id",
    "window_start",
    "changed_at",
    "client_external_id",
    "name",
    "email",
    "phone",
    "document",
    "document_type",
    "external_code",
]


def _contact_party(
    ctx: Context, parties: Parties, clients: pd.DataFrame, client_of: ClientResolver
) -> tuple[pd.DataFrame, str]:
    source = ctx.m.contacts.source
    if source == "organizations":  # the organization's own contact person
        orgs = parties.orgs
        frame = orgs[orgs["ploomes_id"].astype(str).isin(set(clients["external_id"]))].copy()
        frame["client_external_id"] = frame["ploomes_id"].astype(str)
        frame["name"] = normalize_names(frame["contact_name"])["name"].fillna(frame["name"])
        return frame, "organization_contacts"
    if source == "persons":
        frame = parties.persons
        frame["client_external_id"] = client_of(client_owner(ctx, frame))
        return frame, "persons"
    won = parties.won_deals()  # deals: the person on each won deal
    won = won[won["person_id"].notna()]
    person_client = dict(zip(won["person_id"].astype(int), client_of(won["contact_id"]), strict=True))
    frame = parties.persons[parties.persons["ploomes_id"].isin(person_client)].copy()
    frame["client_external_id"] = frame["ploomes_id"].map(person_client)
    return frame, "deal_persons"


def stage_contacts(
    ctx: Context, parties: Parties, clients: pd.DataFrame, client_of: ClientResolver
) -> tuple[pd.DataFrame, dict[str, int]]:
    frame, entity = _contact_party(ctx, parties, clients, client_of)
    extracted, rejects = len(frame), ctx.rejects
    orphan = frame["client_external_id"].isna()
    no_company = orphan & frame["company_id"].isna() & (ctx.m.clients.source != "persons")
    rule = ctx.orphan_rule(frame["company_id"]).where(~no_company, "person_without_company")
    rejects.add(entity, frame, orphan, "client", frame["company_id"], rule)
    # a name is missing, or has no letters to match or show it by (name_key)
    nameless = ~orphan & (frame["name"].isna() | frame["name_key"].isna())
    reason = frame["name_reason"].where(frame["name"].notna(), "name_missing").fillna("name_no_letters")
    rejects.add(entity, frame, nameless, "name", frame["name_raw"], reason)
    # only the columns deduplication reads are copied by the filter (copy-on-write, build.py)
    frame = frame[[c for c in WORK_COLUMNS if c in frame]][~orphan & ~nameless].reset_index(drop=True)
    # the persons frame was read for the last time above: a million rows freed before deduplication
    parties.persons = parties.persons.iloc[0:0]
    merged = 0
    if entity != "organization_contacts" and len(frame):
        frame, _, merged = merge_duplicates(
            ctx, frame, entity, parties.contact_attrs, "contacts", want_aliases=False
        )
    else:
        frame["aliases"] = ""
        frame["custom_attributes"] = "{}"
    # CustomerX's rules (`_email_rules`): the filtered frame replaces the whole one here, so the
    # phone rule runs with one copy of a million contacts alive, not two; the external ids are
    # made for the contacts that pass
    emails, phones = _holders(ctx)
    frame = frame[_email_rules(ctx, frame, entity, emails)].reset_index(drop=True)
    frame["external_id"] = _external_ids(frame, entity)
    frame = _phone_rule(ctx, frame, entity, phones)
    if entity != "organization_contacts":
        ctx.clusters += namesake_rows(frame, entity, ctx.decisions)
    staged = shape(frame, CONTACT_COLUMNS)
    return staged, counts(extracted, len(staged), merged)


NAMESAKE_SCORE = 0.90  # two people of one client with one name: usually the same person entered twice


def namesake_rows(frame: pd.DataFrame, entity: str, decisions: list[Decision]) -> list[dict[str, object]]:
    """Contacts of one client with the same name (letter case aside) that nothing merged: listed
    for a person (`same_name_same_client`), never merged. Decided pairs are left out. The names
    are compared lower-cased, not folded: contact-only persons carry no folded key (`party.py`),
    and folding a million names costs seconds."""
    # names of one length at one client first, as one integer key (cheap): a tenth of a million
    # contacts are then lower-cased instead of all of them (a second and 80 MB, measured)
    client = pd.factorize(frame["client_external_id"])[0].astype(np.int64)
    length = frame["name"].str.len().fillna(-1).to_numpy(dtype=np.int64)
    maybe = pd.Series(client * 4096 + length).duplicated(keep=False).to_numpy() & (length >= 0)
    if not maybe.any():
        return []
    lowered = pd.factorize(frame["name"][maybe].str.lower())[0].astype(np.int64)
    key = client[maybe] * (int(lowered.max()) + 1) + lowered
    shared = pd.Series(key).duplicated(keep=False).to_numpy()
    if not shared.any():
        return []
    members, _ = groups_of(key[shared], frame["ploomes_id"].to_numpy()[maybe][shared], key[shared])
    settled = decided_pairs(decisions)
    return [
        candidate_row("contacts", entity, "same_name_same_client", ids, NAMESAKE_SCORE)
        for ids in members.values()
        if not all_decided(ids, settled)
    ]


def _external_ids(frame: pd.DataFrame, entity: str) -> pd.Series:
    """Our external id of each contact: its Ploomes id, `org-` before it for an organization's own."""
    ids = frame["ploomes_id"].astype(str)
    return "org-" + ids if entity == "organization_contacts" else ids


def _holders(ctx: Context) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """Which of our contacts holds each e-mail, and each (client, phone), in CustomerX (the crosswalk)."""
    if not table_exists(ctx.con, ctx.m.name, "crosswalk"):
        return {}, {}
    rows = ctx.con.execute(
        f"""select external_id, body::json->>'email', body::json->>'external_id_client',
                   coalesce(body::json->'phones'->0->>'ddi', '') || (body::json->'phones'->0->>'number')
            from {ctx.m.name}.crosswalk where entity = 'contacts' and state = 'sent' and body is not null"""
    ).fetchall()
    emails = {str(email).lower(): ext for ext, email, _, _ in rows if email}
    phones = {(str(client), phone): ext for ext, _, client, phone in rows if client and phone}
    return emails, phones


def _taken(frame: pd.DataFrame, key: np.ndarray, holds: np.ndarray) -> np.ndarray:
    """Rows whose `key` (an integer code, -1 for none) an earlier row keeps: the row holding it in
    CustomerX first, then the newest, then the lower Ploomes id. Sorted on these columns only, so
    a million contacts are not copied to be ranked."""
    order = np.lexsort(
        (frame["ploomes_id"].to_numpy(), -frame["changed_at"].to_numpy().astype("int64"), ~holds)
    )
    taken = np.zeros(len(frame), dtype=bool)
    taken[order] = pd.Series(key[order]).duplicated().to_numpy() & (key[order] >= 0)
    return taken


def _email_rules(ctx: Context, frame: pd.DataFrame, entity: str, emails: dict[str, str]) -> np.ndarray:
    """Which contacts CustomerX can take: it refuses a contact without e-mail, and a second
    contact with an e-mail already in the account; those are rejected here, with a reason.

    Who keeps a shared e-mail (or phone, `_phone_rule`): the contact that already holds it in
    CustomerX, else the newest. CustomerX cannot take it back from its holder (a contact needs its
    e-mail), so a newer contact claiming it would only be refused there."""
    rejects = ctx.rejects
    no_email = frame["email"].isna()
    rejects.add(entity, frame, no_email, "email", frame["email"], "email_required_by_customerx")
    holds = (
        (frame["email"].map(emails) == _external_ids(frame, entity)).to_numpy()
        if emails
        else np.zeros(len(frame), bool)
    )
    # a contact without e-mail has code -1, which `_taken` never counts: one filter, not two copies
    taken = pd.Series(_taken(frame, pd.factorize(frame["email"])[0], holds), index=frame.index)
    rejects.add(entity, frame, taken, "email", frame["email"], "email_used_by_another_contact")
    return (~no_email & ~taken).to_numpy()


def _phone_rule(
    ctx: Context, frame: pd.DataFrame, entity: str, phones: dict[tuple[str, str], str]
) -> pd.DataFrame:
    """A shared switchboard number stays on one contact of a client and is cleared on the others."""
    clients = pd.factorize(frame["client_external_id"])[0].astype("int64")
    numbers, found = pd.factorize(frame["phone"])
    pair = np.where(numbers >= 0, clients * (len(found) + 1) + numbers, -1)
    holds = np.zeros(len(frame), bool)
    if phones:
        pairs = zip(frame["client_external_id"].astype(str), frame["phone"].astype(str), strict=True)
        holds = np.array([phones.get(p) for p in pairs], dtype=object) == frame["external_id"].to_numpy()
    phone_taken = pd.Series(_taken(frame, pair, holds), index=frame.index)
    ctx.rejects.add(
        entity, frame, phone_taken, "phone", frame["phone"], "phone_used_by_another_contact", "field_cleared"
    )
    frame.loc[phone_taken, "phone"] = None
    return frame
