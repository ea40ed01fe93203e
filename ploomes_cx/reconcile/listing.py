"""What Ploomes still has: the Ids of each set a reconcile needs, and the deals deleted since the
mapping's start, with what asking cost (requests, seconds), so a user sees it before scheduling."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from ploomes_cx.mapping import Mapping
from ploomes_cx.ploomes.client import DELETED_DEALS_PATH, CallStats, PloomesApi
from ploomes_cx.ploomes.deleted_deals import deleted_deals
from ploomes_cx.ploomes.windows import iter_set_ids
from ploomes_cx.reconcile.origins import DEALS_SET


@dataclass
class SetListing:
    path: str
    ids: set[int] = field(default_factory=set)
    requests: int = 0
    seconds: float = 0.0

    @property
    def ids_per_request(self) -> float:
        return len(self.ids) / self.requests if self.requests else 0.0


@dataclass
class Listing:
    sets: dict[str, SetListing] = field(default_factory=dict)
    deleted_deals: dict[int, str | None] = field(default_factory=dict)  # Id -> when, if said
    # UTC, naive like the crosswalk's: a record loaded after this may be missing from the lists
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC).replace(tzinfo=None))

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.sets.values())

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.sets.values())

    def has(self, path: str, ploomes_id: int) -> bool:
        if path == DEALS_SET and ploomes_id in self.deleted_deals:
            return False
        return ploomes_id in self.sets[path].ids


def list_ploomes(api: PloomesApi, m: Mapping, sets: list[str]) -> Listing:
    """Every Id of `sets`, and (when deals are among them) `Deals/GetDeletedDeals` since the
    mapping's start. A request that keeps failing raises: a half-answered listing must never be
    read as "everything else was deleted"."""
    listing = Listing()
    for path in sets:
        got, stats, started = SetListing(path), CallStats(), time.monotonic()
        for page in iter_set_ids(api, path, stats):
            got.ids.update(page)
        got.requests, got.seconds = stats.requests, time.monotonic() - started
        listing.sets[path] = got
    if DEALS_SET in sets:
        since = dt.datetime.fromisoformat(m.sync.start).replace(tzinfo=ZoneInfo(m.sync.timezone))
        got, stats, started = SetListing(DELETED_DEALS_PATH), CallStats(), time.monotonic()
        listing.deleted_deals = deleted_deals(api, since, stats)
        got.ids = set(listing.deleted_deals)
        got.requests, got.seconds = stats.requests, time.monotonic() - started
        listing.sets[DELETED_DEALS_PATH] = got
    return listing
