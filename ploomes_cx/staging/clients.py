"""Staged clients: the mapping's client source, deduplicated, and the resolver every other table
uses to find its client.

`clients.source` is read here and only here: organizations, persons (B2C), or every contact
(organization or person) with a won deal.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ploomes_cx.decisions import Decision, all_decided, decided_pairs
from ploomes_cx.plan import Plan
from ploomes_cx.staging.context import Context
from ploomes_cx.staging.dedupe import fuzzy_candidates, related_candidates
from ploomes_cx.staging.party import Parties
from ploomes_cx.staging.stored import stored_clients
from ploomes_cx.staging.survivors import candidate_row, merge_duplicates
from ploomes_cx.staging.tables import CLIENT_COLUMNS, counts, shape

ClientResolver = Callable[[pd.Series], pd.Series]


def _client_party(parties: Parties, source: str) -> tuple[pd.DataFrame, str]:
    if source == "organizations":
        return parties.orgs, "organizations"
    if source == "persons":
        return parties.persons, "persons"
    won_contacts = set(parties.won_deals()["contact_id"].dropna().astype(int))
    both = pd.concat([parties.orgs, parties.persons], ignore_index=True)
    return both[both["ploomes_id"].isin(won_contacts)].reset_index(drop=True), "deal_contacts"


def stage_clients(ctx: Context, parties: Parties) -> tuple[pd.DataFrame, dict[str, int], ClientResolver]:
    """Client survivors, their counts, and the Ploomes contact id -> client external id resolver."""
    party, entity = _client_party(parties, ctx.m.clients.source)
    extracted = len(party)
    clients, alias, merged = merge_duplicates(ctx, party, entity, parties.client_attrs)
    clients["source"] = entity
    clients["external_id"] = clients["ploomes_id"].astype(str)
    clients = shape(clients, CLIENT_COLUMNS)
    ctx.clusters += candidate_rows(clients, entity, ctx.decisions)
    return clients, counts(extracted, len(clients), merged), _resolver(ctx, parties, alias)


def candidate_rows(clients: pd.DataFrame, entity: str, decisions: list[Decision]) -> list[dict[str, object]]:
    """Look-alike clients, listed for a person to decide; they never merge. A group listed for
    several reasons is one candidate whose rule names them all; a group every pair of which a
    person decided (either way) is no longer a candidate. From the staged clients alone, so a
    staging of what changed lists them again from the spliced table."""
    settled = decided_pairs(decisions)
    groups: dict[tuple[int, ...], dict[str, object]] = {}
    for g in fuzzy_candidates(clients) + related_candidates(clients):
        members = tuple(int(i) for i in g["members"])
        if all_decided(members, settled):
            continue
        known = groups.get(members)
        if known is None:
            groups[members] = dict(g)
            continue
        known["rule"] = f"{known['rule']}+{g['rule']}"
        known["score"] = max(float(known["score"]), float(g["score"]))
    return [
        # a similarity 0..1 to 3 decimals, not 0.9230769348144531
        candidate_row("clients", entity, str(g["rule"]), members, round(float(g["score"]) / 100, 3))
        for members, g in groups.items()
    ]


def _resolver(ctx: Context, parties: Parties, alias: dict[int, int]) -> ClientResolver:
    via_company = ctx.m.clients.source in ("organizations", "deals")
    company_of = parties.company_of() if via_company else None
    # a re-stage of what a change reached: the contacts outside it keep their stored client
    # (every reached contact counts as staged, read or not: one gone from the raw tables since
    # has no client now, whatever the stored table says)
    staged: set[int] = set()
    if ctx.stored_clients is not None:
        staged = set(parties.orgs["ploomes_id"].tolist()) | set(parties.persons["ploomes_id"].tolist())
        staged |= ctx.reached("contacts")

    def client_of_contact(contact_ids: pd.Series) -> pd.Series:
        """Ploomes contact id -> client external id (or None): the contact itself when it is a
        client (or merged into one), else its organization's client."""
        direct = contact_ids.map(alias)
        missing = direct.isna()
        if company_of is not None and missing.any():  # looked up only for the ones left
            direct[missing] = contact_ids[missing].map(company_of).map(alias)
        if ctx.stored_clients is not None:
            outside = direct.isna() & contact_ids.notna() & ~contact_ids.isin(staged)
            ids = sorted({int(i) for i in contact_ids[outside]})
            # the parties `read_parties` reads: persons only when the mapping extracts them
            read = (
                ("organizations", "persons") if "persons" in Plan.of(ctx.m).extracts else ("organizations",)
            )
            found = stored_clients(ctx.con, ctx.m.name, ctx.stored_clients, ids, via_company, read)
            direct[outside] = contact_ids[outside].map(found)
        found = direct.notna().to_numpy()
        out = np.full(len(direct), None, dtype=object)
        # one string per client, shared by its contacts: a million persons of 250,000 companies
        # would otherwise hold a million strings
        codes, ids = pd.factorize(direct.to_numpy()[found].astype("int64"))
        out[found] = ids.astype(str).astype(object)[codes]
        return pd.Series(out, index=contact_ids.index)

    return client_of_contact


def client_owner(ctx: Context, persons: pd.DataFrame) -> pd.Series:
    """The id that names a person's client: the person itself (B2C), else its company."""
    return persons["ploomes_id"] if ctx.m.clients.source == "persons" else persons["company_id"]
