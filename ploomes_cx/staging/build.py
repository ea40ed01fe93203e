"""From raw Ploomes extracts to the staging tables the CustomerX load reads.

Set-shaped work (latest version per record, JSON field extraction, joins to clients) is DuckDB
SQL over the raw tables; pandas appears at the edges, for the vectorized normalizers and the
clustering. Everything is recomputed over all windows, so deduplication is global and a record's
latest version (by change date) wins whichever window was materialized last.

Accounting, per source entity: every distinct Ploomes record extracted is either staged, merged
into a survivor, or rejected with a reason (`counts`); field-level problems (an invalid CPF, a
broken e-mail) clear the field, keep the record and are listed too, with outcome `field_cleared`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd

from ploomes_cx.mapping import Mapping
from ploomes_cx.plan import Plan
from ploomes_cx.ploomes.custom_fields import mapped_field_types, read_fields, sql_identifier, sql_literal
from ploomes_cx.ploomes.fields import FieldType
from ploomes_cx.staging.dedupe import cluster_by_identifiers, fuzzy_candidates
from ploomes_cx.staging.normalize import (
    normalize_codes,
    normalize_documents,
    normalize_emails,
    normalize_names,
    normalize_phones,
)

REJECTED_COLUMNS = ["entity", "ploomes_id", "field", "value", "rule", "outcome", "window_start", "run_id"]
CLUSTER_COLUMNS = ["cluster_id", "entity", "kind", "survivor_id", "member_ids", "size", "rule", "score"]
ClientResolver = Callable[[pd.Series], pd.Series]


@dataclass
class Staged:
    clients: pd.DataFrame
    contacts: pd.DataFrame
    contracts: pd.DataFrame
    timeline: pd.DataFrame
    rejected: pd.DataFrame
    clusters: pd.DataFrame
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


class _Rejects:
    def __init__(self, run_id: str) -> None:
        self.parts: list[pd.DataFrame] = []
        self.run_id = run_id

    def add(
        self,
        entity: str,
        frame: pd.DataFrame,
        mask: pd.Series,
        field_name: str,
        values: pd.Series,
        rule: pd.Series | str,
        outcome: str = "rejected",
    ) -> None:
        """List the rows of `frame` selected by `mask`; `values` and `rule` are aligned with `frame`."""
        if not mask.any():
            return
        frame = frame[mask]
        rule = rule if isinstance(rule, str) else rule[mask]
        text = pd.Series(values[mask], index=frame.index).astype(object)
        self.parts.append(
            pd.DataFrame(
                {
                    "entity": entity,
                    "ploomes_id": frame["ploomes_id"].astype("int64"),
                    "field": field_name,
                    "value": text.where(text.notna(), None).map(lambda v: v if v is None else str(v)),
                    "rule": rule
                    if isinstance(rule, str)
                    else pd.Series(rule, index=frame.index).astype(object),
                    "outcome": outcome,
                    "window_start": pd.to_datetime(frame["window_start"]).astype("datetime64[us]"),
                    "run_id": self.run_id,
                },
                index=frame.index,
            )
        )

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            out = pd.DataFrame(columns=REJECTED_COLUMNS)
        else:
            out = pd.concat(self.parts, ignore_index=True)[REJECTED_COLUMNS]
        out["ploomes_id"] = out["ploomes_id"].astype("int64")
        out["window_start"] = pd.to_datetime(out["window_start"]).astype("datetime64[us]")
        for col in ("entity", "field", "value", "rule", "outcome", "run_id"):
            out[col] = out[col].astype(object)
        return out


def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()[0][0]
    )


def latest(con: duckdb.DuckDBPyConnection, schema: str, entity: str) -> str:
    """SQL for each record's latest version (by change date, then extraction time).

    The latest row per id is picked by `rowid` first and only then joined back to its payload,
    so the window never has to hold a million JSON documents in memory at once.
    """
    if not _table_exists(con, schema, f"raw_{entity}"):
        return (
            "(select null::bigint as id, null::timestamp as window_start, null::timestamp as changed_at, "
            "null::timestamp as extracted_at, null::varchar as payload where false)"
        )
    table = f"{schema}.raw_{entity}"
    return (
        f"(select id, window_start, changed_at, extracted_at, payload from {table} where rowid in "
        f"(select arg_max(rowid, [epoch_us(changed_at), epoch_us(extracted_at)]) from {table} group by id))"
    )


def _custom(
    con: duckdb.DuckDBPyConnection,
    view: str,
    pairs: list[tuple[str, str]],
    types: dict[str, FieldType],
    entity: str,
    rejects: _Rejects,
) -> pd.Series:
    """Per record, a JSON object of the mapped custom fields only, keyed by CustomerX attribute;
    values that do not fit their field's type are cleared and listed (`custom_field_type`)."""
    attrs, misfits = read_fields(con, view, [(key, attr, types[key]) for key, attr in pairs])
    if len(misfits):
        everything = pd.Series(True, index=misfits.index)
        fields = "custom_field:" + misfits["attribute"].astype(str)
        for name, part in misfits.groupby(fields):
            rejects.add(
                entity,
                part,
                everything[part.index],
                str(name),
                part["value"],
                "custom_field_type",
                "field_cleared",
            )
    return attrs


CONTACT_SHAPE: dict[str, Any] = {
    "TypeId": "INTEGER",
    "Name": "VARCHAR",
    "LegalName": "VARCHAR",
    "Register": "VARCHAR",
    "CNPJ": "VARCHAR",
    "CPF": "VARCHAR",
    "Email": "VARCHAR",
    "Key": "VARCHAR",
    "CompanyId": "BIGINT",
    "ContactName": "VARCHAR",
    "Phones": [{"PhoneNumber": "VARCHAR"}],
}


def _contacts_frame(
    con: duckdb.DuckDBPyConnection, view: str, m: Mapping, types: dict[str, FieldType]
) -> pd.DataFrame:
    """The contact fields staging needs, each payload parsed once (`json_transform`)."""
    shape = dict(CONTACT_SHAPE)
    code, extra = "j.Key", ""
    if m.uses_external_code_custom_field:
        # the slot the field's type names, in the list shape or (`mapped`) the webhook map shape
        key, slot = m.external_code_field, types[m.external_code_field].slot
        shape["OtherProperties"] = [{"FieldKey": "VARCHAR", slot: "JSON"}]
        member = sql_literal('$.OtherProperties."' + key + '"')
        extra = f", json_extract_string(payload, {member}) as mapped"
        found = f"list_filter(j.OtherProperties, lambda x: x.FieldKey = {sql_literal(key)})[1].{sql_identifier(slot)}"
        code = f"coalesce(json_extract_string({found}, '$'), mapped)"
    # (I) Register is read first, then the separate CNPJ / CPF fields (ploomes-api.md §6).
    frame = con.execute(
        f"""
        with p as (
            -- parsed once, and only into what staging reads: a million payloads do not fit in memory
            select id, window_start, changed_at, json_transform(payload, {sql_literal(json.dumps(shape))}) as j{extra}
            from {view} v
        )
        select id as ploomes_id, window_start, changed_at, j.TypeId as type_id, j.Name as name_raw,
            j.LegalName as legal_name,
            coalesce(nullif(j.Register, ''), nullif(j.CNPJ, ''), nullif(j.CPF, '')) as document_raw,
            j.Email as email_raw, j.Phones[1].PhoneNumber as phone_raw, {code} as code_raw,
            j.CompanyId as company_id, j.ContactName as contact_name
        from p
    """
    ).fetchdf()
    # sorted here, not in SQL: DuckDB's sort of a million parsed rows needs more than its share
    return frame.sort_values("ploomes_id", ignore_index=True)


def _normalize_party(frame: pd.DataFrame, entity: str, rejects: _Rejects) -> pd.DataFrame:
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


def _clients_from_party(
    party: pd.DataFrame,
    m: Mapping,
    entity: str,
    rejects: _Rejects,
    clusters: list[dict[str, Any]],
    attrs: pd.Series,
    name_fallback: bool = True,
    want_aliases: bool = True,
    table: str = "clients",
) -> tuple[pd.DataFrame, dict[int, int], int]:
    """Deduplicated records (clients, or contacts); returns (survivors, alias -> survivor id, merged)."""
    missing = party["name_key"].isna()
    if name_fallback and missing.any():
        # A client needs a name; fall back to the legal name before refusing the record.
        legal = normalize_names(party.loc[missing, "legal_name"])
        party.loc[missing, "name"] = legal["name"]
        party.loc[missing, "name_key"] = legal["name_key"]
    nameless = party["name_key"].isna()
    rejects.add(
        entity, party, nameless, "name", party["name_raw"], party["name_reason"].fillna("name_missing")
    )
    party = party[~nameless].reset_index(drop=True)
    result = cluster_by_identifiers(party, m.identifiers)
    ids = party["ploomes_id"].to_numpy()
    survivor_ids = ids[result.survivor]
    alias_to_survivor = dict(zip(ids.tolist(), survivor_ids.tolist(), strict=True)) if want_aliases else {}
    is_survivor = survivor_ids == ids
    for col, values in result.values.items():
        party[col] = values
    # Only clusters of two or more records need per-member work; most records stand alone.
    grouped = pd.DataFrame({"pid": ids, "sid": survivor_ids, "rule": result.matched_by})
    grouped = grouped[grouped["sid"].duplicated(keep=False)].sort_values(["sid", "pid"])
    aliases: dict[int, str] = {}
    for sid, group in grouped.groupby("sid", sort=False):
        pids = group["pid"].tolist()
        aliases[int(sid)] = ",".join(str(x) for x in pids if x != sid)
        clusters.append(
            {
                # persons can be both clients and contacts (B2C): the table keeps the ids apart
                "cluster_id": f"{table}:{entity}:{sid}",
                "entity": entity,
                "kind": "merged",
                "survivor_id": int(sid),
                "member_ids": ",".join(map(str, pids)),
                "size": len(pids),
                "rule": "+".join(sorted(set(group["rule"].dropna()))),
                "score": 1.0,
            }
        )
    survivors = party[is_survivor].copy()
    survivors["aliases"] = survivors["ploomes_id"].map(aliases).fillna("")
    survivors["custom_attributes"] = survivors["ploomes_id"].map(attrs).fillna("{}") if len(attrs) else "{}"
    return survivors, alias_to_survivor, int((~is_survivor).sum())


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
CONTACT_WORK_COLUMNS = [
    "ploomes_id",
    "window_start",
    "changed_at",
    "client_external_id",
    "name",
    "name_key",
    "name_raw",
    "name_reason",
    "email",
    "phone",
    "document",
    "document_type",
    "external_code",
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


TIMESTAMP_COLUMNS = {"changed_at", "window_start", "occurred_at", "sale_date"}


def _shape(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Fixed columns and dtypes, empty or not: timestamps, int64 ids, float64 values, text as object."""
    out = frame.reindex(columns=columns).reset_index(drop=True)
    for col in out.columns:
        if col in TIMESTAMP_COLUMNS:
            out[col] = pd.to_datetime(out[col]).astype("datetime64[us]")
        elif col == "ploomes_id":
            out[col] = out[col].astype("int64")
        elif col == "value":
            out[col] = out[col].astype("float64")
        else:
            out[col] = out[col].astype(object).where(out[col].notna(), None)
    return out


def build_staging(con: duckdb.DuckDBPyConnection, m: Mapping, run_id: str) -> Staged:
    """Compute every staging table of mapping `m` from its raw tables (schema `m.name`)."""
    # Keep DuckDB's own buffers modest: the frames below need the memory more.
    con.execute("set memory_limit = '256MB'")
    con.execute("set preserve_insertion_order = false")
    rejects = _Rejects(run_id)
    clusters: list[dict[str, Any]] = []
    counts: dict[str, dict[str, int]] = {}
    schema = m.name

    client_pairs = [(f.ploomes, f.customerx) for f in m.custom_fields.clients]
    contact_pairs = [(f.ploomes, f.customerx) for f in m.custom_fields.contacts]
    custom: dict[str, dict[str, pd.Series]] = {"clients": {}, "contacts": {}}
    types = mapped_field_types(con, m)

    client_sources = {"organizations": ["organizations"], "persons": ["persons"]}.get(
        m.clients.source, ["organizations", "persons"]
    )
    contact_sources = {"organizations": ["organizations"], "persons": ["persons"]}.get(
        m.contacts.source, ["persons"]
    )

    def party(entity: str) -> pd.DataFrame:
        view = latest(con, schema, entity)
        if entity in client_sources:
            custom["clients"][entity] = _custom(con, view, client_pairs, types, entity, rejects)
        if entity in contact_sources:
            custom["contacts"][entity] = _custom(con, view, contact_pairs, types, entity, rejects)
        return _normalize_party(_contacts_frame(con, view, m, types), entity, rejects)

    orgs = party("organizations")
    extracts = Plan.of(m).extracts
    persons = party("persons") if "persons" in extracts else orgs.iloc[0:0].copy()
    deals = _deals(con, schema) if "deals" in extracts else None
    client_attrs = pd.concat([s for s in custom["clients"].values() if len(s)] or [pd.Series(dtype=object)])
    contact_attrs = pd.concat([s for s in custom["contacts"].values() if len(s)] or [pd.Series(dtype=object)])

    # ---- clients ----
    if m.clients.source == "organizations":
        client_party, client_entity = orgs, "organizations"
    elif m.clients.source == "persons":
        client_party, client_entity = persons, "persons"
    else:  # deals: every contact (organization or person) with a won deal
        won_contacts = (
            set(deals.loc[deals["status_id"] == 2, "contact_id"].dropna().astype(int))
            if deals is not None
            else set()
        )
        both = pd.concat([orgs, persons], ignore_index=True)
        client_party, client_entity = (
            both[both["ploomes_id"].isin(won_contacts)].reset_index(drop=True),
            "deal_contacts",
        )
    extracted = len(client_party)
    clients, client_alias, merged = _clients_from_party(
        client_party, m, client_entity, rejects, clusters, client_attrs
    )
    clients["source"] = client_entity
    clients["external_id"] = clients["ploomes_id"].astype(str)
    clients = _shape(clients, CLIENT_COLUMNS)
    counts["clients"] = {
        "extracted": extracted,
        "staged": len(clients),
        "merged": merged,
        "rejected": extracted - len(clients) - merged,
    }
    groups = fuzzy_candidates(clients)
    for g in groups:
        members = g["members"]
        clusters.append(
            {
                "cluster_id": f"clients:{client_entity}:fuzzy:{members[0]}",
                "entity": client_entity,
                "kind": "candidate",
                "survivor_id": None,
                "member_ids": ",".join(map(str, members)),
                "size": len(members),
                "rule": g["rule"],
                "score": g["score"] / 100,
            }
        )

    company_of = pd.concat(
        [f.set_index("ploomes_id")["company_id"].astype("float64") for f in (orgs, persons) if len(f)]
        or [pd.Series(dtype="float64")]
    )

    def client_of_contact(contact_ids: pd.Series) -> pd.Series:
        """Ploomes contact id -> client external id (or None), by the mapping's client source."""
        direct = contact_ids.map(client_alias)
        if m.clients.source in ("organizations", "deals"):
            via_company = contact_ids.map(company_of).map(client_alias)
            direct = direct.fillna(via_company)
        return direct.map(lambda v: None if pd.isna(v) else str(int(v)))

    # ---- contacts ----
    contacts, contact_counts = _contacts(
        m, orgs, persons, deals, clients, client_of_contact, rejects, clusters, contact_attrs
    )
    counts["contacts"] = contact_counts
    del orgs, persons, client_party  # a million-row account: free the party frames before the rest
    # ---- contracts ----
    contracts, contract_counts = _contracts(con, m, deals, client_of_contact, rejects, types)
    counts["contracts"] = contract_counts
    # ---- timeline ----
    timeline, timeline_counts = _timeline(con, m, deals, client_of_contact, rejects)
    counts["timeline"] = timeline_counts
    return Staged(
        clients=clients,
        contacts=contacts,
        contracts=contracts,
        timeline=timeline,
        rejected=rejects.frame(),
        clusters=pd.DataFrame(clusters, columns=CLUSTER_COLUMNS).astype(
            {"score": "float64", "size": "int64", "survivor_id": "Int64"}
        ),
        counts=counts,
    )


def _deals(con: duckdb.DuckDBPyConnection, schema: str) -> pd.DataFrame:
    view = latest(con, schema, "deals")
    frame = con.execute(f"""
        select id as ploomes_id, window_start, changed_at,
            (payload->>'$.StatusId')::int as status_id, (payload->>'$.ContactId')::bigint as contact_id,
            (payload->>'$.PersonId')::bigint as person_id, payload->>'$.Title' as title,
            (payload->>'$.Amount')::double as amount, payload->>'$.FinishDate' as finish_date,
            (payload->>'$.LastQuoteId')::bigint as last_quote_id
        from {view} v order by ploomes_id
    """).fetchdf()
    frame.attrs["view"] = view
    return frame


def _contacts(
    m: Mapping,
    orgs: pd.DataFrame,
    persons: pd.DataFrame,
    deals: pd.DataFrame | None,
    clients: pd.DataFrame,
    client_of_contact: ClientResolver,
    rejects: _Rejects,
    clusters: list[dict[str, Any]],
    attrs: pd.Series,
) -> tuple[pd.DataFrame, dict[str, int]]:
    source = m.contacts.source
    if source == "organizations":
        frame = orgs[orgs["ploomes_id"].astype(str).isin(set(clients["external_id"]))].copy()
        frame["client_external_id"] = frame["ploomes_id"].astype(str)
        frame["name"] = normalize_names(frame["contact_name"])["name"].fillna(frame["name"])
        entity = "organization_contacts"
    elif source == "persons":
        frame = persons
        owner = frame["ploomes_id"] if m.clients.source == "persons" else frame["company_id"]
        frame["client_external_id"] = client_of_contact(owner)
        entity = "persons"
    else:  # deals: the person on each won deal
        won = (
            deals[(deals["status_id"] == 2) & deals["person_id"].notna()]
            if deals is not None
            else pd.DataFrame()
        )
        person_client = dict(
            zip(won["person_id"].astype(int), client_of_contact(won["contact_id"]), strict=True)
        )
        frame = persons[persons["ploomes_id"].isin(person_client)].copy()
        frame["client_external_id"] = frame["ploomes_id"].map(person_client)
        entity = "deal_persons"
    extracted = len(frame)
    orphan = frame["client_external_id"].isna()
    no_company = orphan & frame["company_id"].isna() & (m.clients.source != "persons")
    rule = pd.Series("client_not_found", index=frame.index).where(~no_company, "person_without_company")
    rejects.add(entity, frame, orphan, "client", frame["company_id"], rule)
    nameless = ~orphan & frame["name"].isna()
    rejects.add(entity, frame, nameless, "name", frame["name_raw"], "name_missing")
    frame = frame[~orphan & ~nameless].reset_index(drop=True)
    merged = 0
    if source != "organizations" and len(frame):
        work = frame[[c for c in CONTACT_WORK_COLUMNS if c in frame]]
        del frame  # the full party frame is not needed past this point
        frame, _, merged = _clients_from_party(
            work,
            m,
            entity,
            _Rejects(rejects.run_id),
            clusters,
            attrs,
            name_fallback=False,
            want_aliases=False,
            table="contacts",
        )
    else:
        frame["aliases"] = ""
        frame["custom_attributes"] = "{}"
    # CustomerX refuses a contact without e-mail, and a second contact with an e-mail already in
    # the account (customerx-api.md §8.2): reject those here, with a reason, before any call.
    no_email = frame["email"].isna()
    rejects.add(entity, frame, no_email, "email", frame["email"], "email_required_by_customerx")
    newest_first = frame[~no_email].sort_values(["changed_at", "ploomes_id"], ascending=[False, True])
    taken = newest_first["email"].duplicated().reindex(frame.index, fill_value=False)
    rejects.add(entity, frame, taken, "email", frame["email"], "email_used_by_another_contact")
    frame = frame[~no_email & ~taken].copy()
    # (phone, client) is unique too (§8.2): a shared switchboard number stays on the newest contact.
    newest_first = frame.sort_values(["changed_at", "ploomes_id"], ascending=[False, True])
    phone_taken = (
        newest_first["phone"].notna() & newest_first.duplicated(["client_external_id", "phone"])
    ).reindex(frame.index, fill_value=False)
    rejects.add(
        entity, frame, phone_taken, "phone", frame["phone"], "phone_used_by_another_contact", "field_cleared"
    )
    frame.loc[phone_taken, "phone"] = None
    ids = frame["ploomes_id"].astype(str)
    frame["external_id"] = "org-" + ids if source == "organizations" else ids
    staged = _shape(frame, CONTACT_COLUMNS)
    return staged, {
        "extracted": extracted,
        "staged": len(staged),
        "merged": merged,
        "rejected": extracted - len(staged) - merged,
    }


def _contracts(
    con: duckdb.DuckDBPyConnection,
    m: Mapping,
    deals: pd.DataFrame | None,
    client_of_contact: ClientResolver,
    rejects: _Rejects,
    types: dict[str, FieldType],
) -> tuple[pd.DataFrame, dict[str, int]]:
    if m.contracts.source == "none" or deals is None:
        return _shape(pd.DataFrame(), CONTRACT_COLUMNS), {
            "extracted": 0,
            "staged": 0,
            "merged": 0,
            "rejected": 0,
        }
    won = deals[deals["status_id"] == 2].copy()
    won["client_external_id"] = client_of_contact(won["contact_id"])
    won["sale_date"] = won["finish_date"].map(_date_parser(m, date_only=True))
    pairs = [(f.ploomes, f.customerx) for f in m.custom_fields.contracts]
    attrs = _custom(con, deals.attrs["view"], pairs, types, "deals", rejects)
    won["custom_attributes"] = won["ploomes_id"].map(attrs).fillna("{}") if len(attrs) else "{}"
    if m.contracts.source == "won_deals":
        frame = won.assign(
            external_id=won["ploomes_id"].astype(str),
            value=won["amount"],
            product_name=None,
            product_code=None,
        )
        entity = "won_deals"
    else:
        frame = _product_lines(con, m, won)
        entity = "deal_products"
    extracted = len(frame)
    orphan = frame["client_external_id"].isna()
    rejects.add(entity, frame, orphan, "client", frame["client_external_id"], "client_not_found")
    frame = frame[~orphan]
    staged = _shape(frame, CONTRACT_COLUMNS)
    return staged, {
        "extracted": extracted,
        "staged": len(staged),
        "merged": 0,
        "rejected": extracted - len(staged),
    }


def _product_lines(con: duckdb.DuckDBPyConnection, m: Mapping, won: pd.DataFrame) -> pd.DataFrame:
    """Lines of the deal's orders, or, for a won deal with no order, of its last quote."""
    lines = []
    for entity, kind in (("orders", "order"), ("quotes", "quote")):
        view = latest(con, m.name, entity)
        lines.append(
            con.execute(f"""
            select '{kind}' as kind, o.id as parent_id, (o.payload->>'$.DealId')::bigint as deal_id,
                o.window_start, o.changed_at, (line->>'$.Id')::bigint as line_id, line->>'$.ProductName' as product_name,
                line->>'$.Product.Code' as product_code, (line->>'$.Total')::double as value
            from {view} o, unnest(cast(json_extract(o.payload, '$.Products') as JSON[])) as t(line)
        """).fetchdf()
        )
    orders, quotes = lines
    with_order = set(orders["deal_id"])
    last_quote = dict(zip(won["ploomes_id"], won["last_quote_id"], strict=True))
    quotes = quotes[
        ~quotes["deal_id"].isin(with_order) & (quotes["parent_id"] == quotes["deal_id"].map(last_quote))
    ]
    chosen = pd.concat([orders, quotes], ignore_index=True)
    chosen = chosen[chosen["deal_id"].isin(set(won["ploomes_id"]))]
    deal_info = won.set_index("ploomes_id")
    chosen["external_id"] = (
        chosen["deal_id"].astype(str) + "-" + chosen["kind"] + "-" + chosen["line_id"].astype(str)
    )
    chosen["ploomes_id"] = chosen["deal_id"]
    for col in ("client_external_id", "title", "sale_date", "custom_attributes"):
        chosen[col] = chosen["deal_id"].map(deal_info[col])
    return chosen


def _timeline(
    con: duckdb.DuckDBPyConnection,
    m: Mapping,
    deals: pd.DataFrame | None,
    client_of_contact: ClientResolver,
    rejects: _Rejects,
) -> tuple[pd.DataFrame, dict[str, int]]:
    specs = {
        "notes": ("notes", "note", "payload->>'$.Date'", "'Nota'", "payload->>'$.Content'", "null"),
        "activities": (
            "tasks",
            "activity",
            "payload->>'$.DateTime'",
            "payload->>'$.Title'",
            "payload->>'$.Description'",
            "null",
        ),
        "attachments": (
            "attachments",
            "attachment",
            "payload->>'$.CreateDate'",
            "coalesce(payload->>'$.Name', payload->>'$.FileName')",
            "payload->>'$.ContentType'",
            "payload->>'$.Url'",
        ),
    }
    frames = []
    deal_contact = (
        dict(zip(deals["ploomes_id"], deals["contact_id"], strict=True)) if deals is not None else {}
    )
    extracted = 0
    for kind in m.timeline:
        entity, prefix, when, title, body, url = specs[kind]
        view = latest(con, m.name, entity)
        frame = con.execute(f"""
            select id as ploomes_id, window_start, changed_at, {when} as occurred_raw, {title} as title, {body} as body,
                {url} as url, (payload->>'$.ContactId')::bigint as contact_id, (payload->>'$.DealId')::bigint as deal_id
            from {view} v order by ploomes_id
        """).fetchdf()
        extracted += len(frame)
        contact = frame["contact_id"].fillna(frame["deal_id"].map(deal_contact))
        frame["client_external_id"] = client_of_contact(contact)
        frame["occurred_at"] = frame["occurred_raw"].map(_date_parser(m)).fillna(frame["changed_at"])
        frame["kind"] = prefix
        frame["external_id"] = prefix + "-" + frame["ploomes_id"].astype(str)
        orphan = frame["client_external_id"].isna()
        rejects.add(entity, frame, orphan, "client", contact, "client_not_found")
        frames.append(frame[~orphan])
    staged = _shape(pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(), TIMELINE_COLUMNS)
    return staged, {
        "extracted": extracted,
        "staged": len(staged),
        "merged": 0,
        "rejected": extracted - len(staged),
    }


def _local_datetime(text: Any, naive_zone: ZoneInfo, zone: ZoneInfo) -> dt.datetime | None:
    """Ploomes date text -> naive time in the mapping's zone (offset-less text is account-local, I)."""
    if not isinstance(text, str) or not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=naive_zone)
    return value.astimezone(zone).replace(tzinfo=None)


def _date_parser(m: Mapping, date_only: bool = False) -> Callable[[Any], dt.datetime | None]:
    parse = partial(
        _local_datetime,
        naive_zone=ZoneInfo(m.ploomes.naive_datetime_timezone),
        zone=ZoneInfo(m.sync.timezone),
    )
    if not date_only:
        return parse

    def day(text: Any) -> dt.datetime | None:
        value = parse(text)
        return value.replace(hour=0, minute=0, second=0, microsecond=0) if value else None

    return day
