"""One window's records of a set, in the form the account takes (`probes.py`), never with a gap.

Most sets are read by their change date, as ploomes-api.md §9 confirms for Contacts, Deals, Tasks
and InteractionRecords. Three sets are read that way only if the account takes it:

- Orders and Quotes (`orders_window`, `quotes_window`): §9 does not name `LastUpdateDate` on them.
  Refused, a window's orders and quotes are those of the deals changed in the window
  (`/Deals` windowed, `$select=Id,LastUpdateDate`), asked by deal: `DealId` for orders (C [S7]),
  `Deal/Id` for quotes (C [S8]), batched in the `id_list` form, and placed in the window by their
  deal's change date (`placed`), so a re-run reads the same ones. Its reach (I): an order or quote
  is read again when its deal changes; the contracts read only won deals' lines, which the deal's
  own window brings.
- Attachments (`attachments_window`): §2 says unscoped listings are slow or time out, and §6 that
  Id windows (`Id gt X and Id le X+W`) are fast (C [S6]). Refused, the set is walked in Id windows
  and the attachments created in the window kept: the same records as the `CreateDate` window,
  for one request per page of the whole set (an empty stretch of Ids is jumped over with one
  `$top=1` look past it).

HTTP only, through the client; no frames.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from ploomes_cx.ploomes import probes
from ploomes_cx.ploomes.client import CallStats, PloomesApi, PloomesRequestError, PloomesUnavailableError
from ploomes_cx.ploomes.dates import parse
from ploomes_cx.ploomes.entities import EntitySpec

CAPABILITY = {"orders": "orders_window", "quotes": "quotes_window", "attachments": "attachments_window"}
# the key orders and quotes are asked by, per their deal (C [S7], C [S8])
BY_DEAL = {"orders": "DealId", "quotes": "Deal/Id"}
ACCOUNT_ZONE = ZoneInfo("America/Sao_Paulo")
ID_WINDOW = 50_000  # Ids per window of the walk; pages of `page_size` inside each
MAX_ID = 2**53 - 1  # the upper bound of the look past an empty window


@dataclass
class WindowRead:
    records: list[dict[str, Any]] = field(default_factory=list)
    placed: dict[int, str] = field(default_factory=dict)  # Id -> the parent's change date placing it
    form: str = "window"


def read_window(
    api: PloomesApi,
    spec: EntitySpec,
    start: dt.datetime | None,
    end: dt.datetime,
    stats: CallStats,
    naive_zone: ZoneInfo = ACCOUNT_ZONE,
) -> WindowRead:
    """The records of `spec` for the window [start, end) (no start: the history window); dates
    without an offset are read in `naive_zone` (ploomes-api.md §5)."""
    capability = CAPABILITY.get(spec.name)
    form = probes.decide(api, api.forms, capability) if capability else "window"
    if form == "window":
        try:
            return WindowRead([r for page in api.iter_window(spec, start, end, stats) for r in page])
        except (PloomesRequestError, PloomesUnavailableError) as exc:
            # a 400 (or for attachments a listing that timed out) only: an outage fails the run
            if capability is None or not probes.refused(exc, capability):
                raise
            if probes.reprobe(api, api.forms, capability, form, exc) == form:
                raise
    if spec.name == "attachments":
        return _created_in(api, spec, (start, end), stats, naive_zone)
    return _through_deals(api, spec, start, end, stats)


def _through_deals(
    api: PloomesApi, spec: EntitySpec, start: dt.datetime | None, end: dt.datetime, stats: CallStats
) -> WindowRead:
    read = WindowRead(form="deals")
    deals = _changed(api, "/Deals", start, end, stats)
    key = BY_DEAL[spec.name]
    for page in api.iter_by_ids(spec.path, list(deals), spec.expand, stats, key=key):
        for record in page:
            # every deal asked changed in this window: a record without the key is placed by any
            stamp = deals.get(int(record.get(key.replace("/", "")) or 0)) or max(deals.values())
            if record["Id"] not in read.placed:
                read.records.append(record)
                read.placed[record["Id"]] = stamp
    return read


def _created_in(
    api: PloomesApi,
    spec: EntitySpec,
    window: tuple[dt.datetime | None, dt.datetime],
    stats: CallStats,
    naive_zone: ZoneInfo,
) -> WindowRead:
    """The attachments whose `CreateDate` is in [start, end), read by walking the Id windows."""
    start, end = window
    read = WindowRead(form="id_windows")
    for page in iter_id_windows(api, spec.path, stats):
        for record in page:
            try:
                stamp = parse(str(record.get(spec.date_field)), naive_zone)
            except ValueError:
                read.records.append(record)  # undatable: kept, so staging reports it rather than lose it
                continue
            if (start is None or start <= stamp) and stamp < end:
                read.records.append(record)
    return read


def iter_id_windows(
    api: PloomesApi, path: str, stats: CallStats, select: str = ""
) -> Iterator[list[dict[str, Any]]]:
    """Every record of `path`, a page at a time, asked only in Id windows (`Id gt X and Id le
    X+W`, C [S6]); after an empty window, one `$top=1` request finds the next Id, or the end."""
    last = 0
    while True:
        high = last + ID_WINDOW
        empty = True
        for page in api.iter_filter(path, f"Id gt {last} and Id le {high}", stats, select=select):
            empty = False
            yield page
        last = high
        if empty:
            after = {
                "$filter": f"Id gt {high} and Id le {MAX_ID}",
                "$orderby": "Id",
                "$top": "1",
                "$select": "Id",
            }
            found = api.get(path, after, stats).get("value", [])
            if not found:
                return
            last = int(found[0]["Id"]) - 1


def _changed(
    api: PloomesApi, path: str, start: dt.datetime | None, end: dt.datetime, stats: CallStats
) -> dict[int, str]:
    """Id -> LastUpdateDate of the records of `path` changed in the window (§9, C)."""
    spec = EntitySpec(path.strip("/").lower(), path, None, "LastUpdateDate", (), "parents of a window")
    return {
        int(r["Id"]): str(r["LastUpdateDate"])
        for page in api.iter_window(spec, start, end, stats, select="Id,LastUpdateDate")
        for r in page
        if r.get("LastUpdateDate")
    }


def iter_set_ids(api: PloomesApi, path: str, stats: CallStats) -> Iterator[list[int]]:
    """Every Id a set still holds (a reconcile's listing): `/Attachments` in Id windows when the
    account does not list it whole (`attachments_window`), every other set as one keyset listing."""
    if path != "/Attachments":
        yield from api.iter_ids(path, stats)
        return
    if probes.decide(api, api.forms, "attachments_window") == "window":
        try:
            yield from list(api.iter_ids(path, stats))  # whole, or not at all: then in Id windows
            return
        except (PloomesRequestError, PloomesUnavailableError) as exc:
            if not probes.refused(exc, "attachments_window"):
                raise
            if probes.reprobe(api, api.forms, "attachments_window", "window", exc) == "window":
                raise
    for page in iter_id_windows(api, path, stats, "Id"):
        yield [int(r["Id"]) for r in page]
