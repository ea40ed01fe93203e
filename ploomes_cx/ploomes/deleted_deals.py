"""The deals deleted since a date, in the form the account takes (`probes.py`, `deleted_deals`).

ploomes-api.md §9 shows `GET /Deals/GetDeletedDeals?$filter=LastUpdateDate ge <ts>` (C [S2]) and
nothing else: paging it with `$orderby`/`$top`/`Id gt` like every list is our assumption. When the
account refuses that, the confirmed form is asked over date slices (`ge`/`gt`/`le`, all C): an
answer of `SLICE_FULL` rows or more may be a page the server cut short (§3: the cap and whether it
truncates silently are unknown), so its slice is halved and asked again, down to one second; a
second that still fills a page is an error, never a silent gap. HTTP only, through the client.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ploomes_cx.ploomes import probes
from ploomes_cx.ploomes.client import CallStats, PloomesApi, PloomesRequestError, format_literal

SLICE_FULL = 100  # rows from which an unpaged answer may have been cut at the server's page cap


def deleted_deals(api: PloomesApi, since: dt.datetime, stats: CallStats) -> dict[int, str | None]:
    """Deals deleted since `since`: Id -> when (`LastUpdateDate` of the row, when present; the
    rows' shape is not documented, I)."""
    form = probes.decide(api, api.forms, "deleted_deals")
    rows: list[dict[str, Any]]
    if form == "paged":
        try:
            rows = _paged(api, since, stats)
        except PloomesRequestError as exc:
            if exc.status != 400 or probes.reprobe(api, api.forms, "deleted_deals", form) == form:
                raise
            rows = _sliced(api, since, stats)
    else:
        rows = _sliced(api, since, stats)
    return {int(r["Id"]): r.get("LastUpdateDate") for r in rows}


def _paged(api: PloomesApi, since: dt.datetime, stats: CallStats) -> list[dict[str, Any]]:
    flt = f"LastUpdateDate ge {format_literal(since, api.datetime_literal)}"
    return [r for page in api.iter_filter(probes.DELETED_DEALS_PATH, flt, stats) for r in page]


def _sliced(api: PloomesApi, since: dt.datetime, stats: CallStats) -> list[dict[str, Any]]:
    """The confirmed form over [since, now]: slices halved while an answer may be cut."""
    until = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1)
    since = since.replace(microsecond=0)
    found: dict[int, dict[str, Any]] = {}
    pending = [(since, until, True)]  # (from, to, from inclusive): ge/gt from, le to
    while pending:
        lo, hi, inclusive = pending.pop()
        low = f"LastUpdateDate {'ge' if inclusive else 'gt'} {format_literal(lo, api.datetime_literal)}"
        high = f"LastUpdateDate le {format_literal(hi, api.datetime_literal)}"
        rows = list(api.get(probes.DELETED_DEALS_PATH, {"$filter": f"{low} and {high}"}, stats)["value"])
        stats.pages += 1
        if len(rows) < SLICE_FULL:
            found.update({int(r["Id"]): r for r in rows if isinstance(r.get("Id"), int)})
            continue
        if hi - lo <= dt.timedelta(seconds=1):
            raise PloomesRequestError(
                f"Ploomes {probes.DELETED_DEALS_PATH} answered {len(rows)} deals deleted within one second "
                f"({lo.isoformat()}) and takes no paging: the list may be cut; reconcile stops rather than "
                "miss deletes."
            )
        mid = lo + dt.timedelta(seconds=int((hi - lo).total_seconds()) // 2)
        pending += [(lo, mid, inclusive), (mid, hi, False)]
    stats.records += len(found)
    return list(found.values())
