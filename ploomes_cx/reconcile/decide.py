"""From what CustomerX holds from us and what Ploomes still lists, the actions of a reconcile,
and the `deletes.max_share` guard that stops them all.

Policies (mapping-and-cli.md §4.2): `ignore` writes nothing to CustomerX (the ledger says what
is gone); `cancel` cancels a gone deal's contracts and every contract of a gone client, leaving
clients, contacts and timeline as they are; `delete` deletes gone clients, contacts and contracts
(with a gone client, its contracts too). Timeline entries are never deleted.

A record is removed once: a contract already cancelled, or a record deleted (it leaves the
crosswalk), asks for nothing on the next reconcile.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from ploomes_cx.mapping import Mapping
from ploomes_cx.ploomes.dates import parse
from ploomes_cx.reconcile.listing import Listing, SetListing
from ploomes_cx.reconcile.origins import DEALS_SET, Origin, origin
from ploomes_cx.reconcile.tombstones import Held

ORDER = ("contracts", "contacts", "clients")  # children before the client they belong to


@dataclass(frozen=True)
class Action:
    entity: str
    external_id: str
    op: str  # cancel | delete
    when: dt.date  # the cancellation date: when Ploomes says the deal was deleted, else today
    why: str


@dataclass
class Finding:
    """One CustomerX entity's side of a reconcile."""

    held: int = 0
    gone: int = 0  # held records whose Ploomes record is gone
    newly_gone: int = 0  # of those, first found by this reconcile
    unknown_origin: int = 0  # ids not in a form we write: never removed
    removed: int = 0  # what this reconcile cancels or deletes

    def share(self) -> float:
        return self.removed / self.held if self.held else 0.0


@dataclass
class Decision:
    policy: str
    max_share: float
    findings: dict[str, Finding] = field(default_factory=dict)
    gone: dict[Origin, str | None] = field(default_factory=dict)  # every gone origin -> deletion date
    newly_gone: list[tuple[Held, Origin]] = field(default_factory=list)
    restored: set[Origin] = field(default_factory=set)  # found gone before, listed again now
    actions: list[Action] = field(default_factory=list)

    @property
    def guard(self) -> list[str]:
        """Why nothing may be removed: each entity above `deletes.max_share`, with its counts."""
        verb = "deleted" if self.policy == "delete" else "cancelled"
        return [
            f"{entity}: {f.removed} of the {f.held} CustomerX holds from us would be "
            f"{'gone, their contracts cancelled' if entity == 'clients' and verb == 'cancelled' else verb} "
            f"({f.share():.0%}), above deletes.max_share {self.max_share:.0%}"
            for entity, f in self.findings.items()
            if f.share() > self.max_share
        ]


def decide(
    m: Mapping,
    held: list[Held],
    statuses: dict[str, str],
    listing: Listing,
    known_gone: set[Origin],
    today: dt.date,
) -> Decision:
    d = Decision(m.deletes.policy, m.deletes.max_share)
    origins: dict[tuple[str, str], Origin] = {}
    for h in held:
        finding = d.findings.setdefault(h.entity, Finding())
        finding.held += 1
        o = origin(h.entity, h.external_id)
        if o is None or o.ploomes_set not in listing.sets:
            finding.unknown_origin += 1
            continue
        origins[(h.entity, h.external_id)] = o
        if listing.has(o.ploomes_set, o.ploomes_id):
            if o in known_gone:
                d.restored.add(o)
            continue
        d.gone[o] = listing.deleted_deals.get(o.ploomes_id) if o.ploomes_set == DEALS_SET else None
        finding.gone += 1
        if o not in known_gone:
            finding.newly_gone += 1
            d.newly_gone.append((h, o))
    if d.policy != "ignore":
        d.actions = _actions(m, d, held, origins, statuses, today)
    for a in d.actions:
        d.findings[a.entity].removed += 1
    if d.policy == "cancel":  # a client is not written, but its contracts go with it
        d.findings.setdefault("clients", Finding()).removed = sum(
            1 for h, _ in d.newly_gone if h.entity == "clients"
        )
    return d


def _actions(
    m: Mapping,
    d: Decision,
    held: list[Held],
    origins: dict[tuple[str, str], Origin],
    statuses: dict[str, str],
    today: dt.date,
) -> list[Action]:
    zone = ZoneInfo(m.sync.timezone)
    gone_clients = {
        h.external_id
        for h in held
        if h.entity == "clients" and origins.get((h.entity, h.external_id)) in d.gone
    }
    op = "cancel" if d.policy == "cancel" else "delete"
    actions = []
    for entity in ORDER:
        for h in held:
            if h.entity != entity:
                continue
            o = origins.get((h.entity, h.external_id))
            own = o is not None and o in d.gone
            if entity == "contracts":
                if not own and h.client not in gone_clients:
                    continue
                if op == "cancel" and statuses.get(h.external_id) == "cancelled":
                    continue
                deleted = d.gone.get(o) if own and o is not None else None
                when = parse(deleted, zone).astimezone(zone).date() if deleted else today
                why = (
                    f"deal {o.ploomes_id} was deleted in Ploomes"
                    if own and o is not None
                    else f"its client {h.client} was deleted in Ploomes"
                )
                actions.append(Action(entity, h.external_id, op, when, why))
            elif op == "delete" and own and o is not None:
                actions.append(
                    Action(entity, h.external_id, op, today, f"Ploomes contact {o.ploomes_id} was deleted")
                )
    return actions


def decide_confirmed(
    m: Mapping,
    held: list[Held],
    statuses: dict[str, str],
    gone: dict[Origin, str | None],
    known_gone: set[Origin],
    today: dt.date,
) -> Decision:
    """The decision for records confirmed gone one by one (a delete webhook, then Ploomes not
    returning the Id): as a reconcile whose listing holds every other record we hold, so the
    policy, the order of actions and the `deletes.max_share` share are the same."""
    listing = Listing()
    for path in {o.ploomes_set for o in gone}:
        ids = {o.ploomes_id for h in held if (o := origin(h.entity, h.external_id)) and o.ploomes_set == path}
        listing.sets[path] = SetListing(path, ids - {o.ploomes_id for o in gone if o.ploomes_set == path})
    listing.deleted_deals = {o.ploomes_id: when for o, when in gone.items() if o.ploomes_set == DEALS_SET}
    return decide(m, held, statuses, listing, known_gone, today)
