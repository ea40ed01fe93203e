"""What one mapping builds, decided once: extracts, staged entities, names of every key and pool.

Every layer, the runner and the CLI read a mapping's `Plan` instead of interpreting its keys
(or rebuilding an asset key, resource key, pool or op name) on their own, so adding a source or
renaming a key is one edit here.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from ploomes_cx.mapping import Mapping

# Raw extracts in the order they run and show; `fields` (the catalogue) always comes first.
EXTRACT_ORDER = (
    "fields",
    "organizations",
    "persons",
    "deals",
    "orders",
    "quotes",
    "notes",
    "tasks",
    "attachments",
)
TIMELINE_EXTRACTS = {"notes": "notes", "activities": "tasks", "attachments": "attachments"}
STAGED_ORDER = ("clients", "contacts", "contracts", "timeline")
STAGING_TABLES = {e: f"stg_{e}" for e in STAGED_ORDER}


def _extracts(m: Mapping) -> tuple[str, ...]:
    needed = {"fields"}
    for source in (m.clients.source, m.contacts.source):
        if source == "organizations":
            needed.add("organizations")
        elif source == "persons":
            needed |= {"persons", "organizations"}
        else:  # deals: the client/contact comes from the contact or person on a won deal
            needed |= {"deals", "organizations", "persons"}
    if m.contracts.source == "won_deals":
        needed.add("deals")
    elif m.contracts.source == "deal_products":
        needed |= {"deals", "orders", "quotes"}
    needed |= {TIMELINE_EXTRACTS[k] for k in m.timeline}
    return tuple(e for e in EXTRACT_ORDER if e in needed)


CONTACTS, DEALS, ORDERS, QUOTES = "contacts", "deals", "orders", "quotes"


@dataclass(frozen=True)
class Ref:
    child: str  # the raw entity holding the reference
    path: str  # where the referenced value is in the child's payload
    parent: str  # contacts | deals | orders (keyed by DealId) | quotes
    won_only: bool = False  # only won deals need it


def references(m: Mapping) -> list[Ref]:
    """The references the mapping's staged tables follow; empty when they need no parent."""
    extracts = _extracts(m)
    refs: list[Ref] = []
    if "persons" in extracts and m.clients.source in ("organizations", "deals"):
        refs.append(Ref("persons", "$.CompanyId", CONTACTS))
    if "deals" in extracts:
        refs.append(Ref("deals", "$.ContactId", CONTACTS))
        if m.contacts.source == "deals":
            refs.append(Ref("deals", "$.PersonId", CONTACTS))
    for child in ("notes", "tasks", "attachments"):
        if child in extracts:
            refs.append(Ref(child, "$.ContactId", CONTACTS))
            if "deals" in extracts:
                refs.append(Ref(child, "$.DealId", DEALS))
    if m.contracts.source == "deal_products":
        refs += [
            Ref("deals", "$.Id", ORDERS, won_only=True),
            Ref("deals", "$.LastQuoteId", QUOTES, won_only=True),
        ]
    return refs


def _staged(m: Mapping) -> tuple[str, ...]:
    present = {"clients", "contacts"}
    if m.contracts.source != "none":
        present.add("contracts")
    if m.timeline:
        present.add("timeline")
    return tuple(e for e in STAGED_ORDER if e in present)


@dataclass(frozen=True)
class Plan:
    name: str
    extracts: tuple[str, ...]  # raw extracts, `fields` first
    fetches_dependencies: bool  # whether the staged tables follow references to parents (raw_dependencies)
    staged: tuple[str, ...]  # staged (and loaded) CustomerX entities
    ploomes_resource: str
    customerx_resource: str
    duckdb_resource: str
    io_manager: str
    ploomes_pool: str  # one API step at a time per Ploomes credential, across mappings and runs
    customerx_pool: str
    job: str
    schedule: str

    @classmethod
    def of(cls, m: Mapping) -> Plan:
        n = m.name
        return cls(
            name=n,
            extracts=_extracts(m),
            fetches_dependencies=bool(references(m)),
            staged=_staged(m),
            ploomes_resource=f"{n}_ploomes",
            customerx_resource=f"{n}_customerx",
            duckdb_resource=f"{n}_duckdb",
            io_manager=f"{n}_io_manager",
            ploomes_pool=f"ploomes_api__{m.ploomes.user_key_env.lower()}",
            customerx_pool=f"customerx_api__{m.customerx.token_env.lower()}",
            job=f"{n}_sync",
            schedule=f"{n}_sync_schedule",
        )

    @property
    def entity_extracts(self) -> tuple[str, ...]:
        """The record extracts (every raw asset but the field catalogue)."""
        return tuple(e for e in self.extracts if e != "fields")

    @property
    def raw_assets(self) -> tuple[str, ...]:
        """Every raw asset: the extracts, then the dependencies fetched by Id when there are any."""
        return self.extracts + (("dependencies",) if self.fetches_dependencies else ())

    def group(self, layer: str) -> str:
        return f"{self.name}_{layer}"

    def table(self, entity: str) -> str:
        """The DuckDB table (in schema `name`) of a staged entity or staging side table."""
        return STAGING_TABLES.get(entity, entity)

    def raw_key(self, entity: str) -> dg.AssetKey:
        return dg.AssetKey([self.name, f"raw_{entity}"])

    def staging_key(self, entity: str) -> dg.AssetKey:
        return dg.AssetKey([self.name, self.table(entity)])

    def load_key(self, entity: str) -> dg.AssetKey:
        return dg.AssetKey([self.name, f"load_{entity}"])

    @property
    def reconcile_key(self) -> dg.AssetKey:
        return dg.AssetKey([self.name, "reconcile"])

    @property
    def reconcile_job(self) -> str:
        return f"{self.name}_reconcile"

    @property
    def live_key(self) -> dg.AssetKey:
        """The records re-read for webhook events (§4.3)."""
        return self.raw_key("live")

    @property
    def live_deletes_key(self) -> dg.AssetKey:
        return dg.AssetKey([self.name, "live_deletes"])

    @property
    def live_job(self) -> str:
        return f"{self.name}_live"

    def load_op(self, entity: str) -> str:
        """The op of a load asset (what run config addresses)."""
        return f"{self.name}__load_{entity}"

    def role(self, key: dg.AssetKey) -> tuple[str, str] | None:
        """(layer, entity) of one of this plan's assets: how a reader of a run's events learns what a
        step was, without parsing its name. None for keys this plan does not build."""
        roles = {self.raw_key(e): ("raw", e) for e in (*self.raw_assets, "live")}
        roles |= {self.staging_key(e): ("staging", e) for e in self.staged}
        roles |= {self.load_key(e): ("load", e) for e in self.staged}
        return roles.get(key)
