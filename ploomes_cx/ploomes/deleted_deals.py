"""The deals deleted since a date, in the form the account takes (`probes.py`, `deleted_deals`).

ploomes-api.md §9 shows `GET /Deals/GetDeletedDeals?$filter=LastUpdateDate ge <ts>` (C [S2]) and
nothing else: paging it with `$orderby`/`$top`/`Id gt` like every list is our assumption. When the
account refuses that, the confirmed form is asked over date slices (`ge`/`gt`/`le`, all C), each
with `$top=300` (§3: the common, documented page size; a list asked without `$top` gets a default
size nobody documents). An answer that fills the page it could get (300, or the server's own cap
when it cuts `$top` silently, §3 I: measured once on `/Deals`) may be cut, so its slice is halved
and asked again, down to one second; a second that still fills a page is an error, never a silent
gap. A row without an integer `Id` is an error in both forms: a delete we cannot name is not
skipped quietly. HTTP only, through the client.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ploomes_cx.ploomes import probes
from ploomes_cx.ploomes.client import CallStats, PloomesApi, PloomesRequestError, format_literal

TOP = 300  # §3: `$top=300` is the common page size ("max 300", C [S4])


def deleted_deals(api: PloomesApi, since: dt.datetime, stats: CallStats) -> dict[int, str | None]:
    """Deals deleted since `since`: Id -> when (`LastUpdateDate` of the row, when present; the
    rows' shape is not documented, I)."""
    form = probes.decide(api, api.forms, "deleted_deals")
    rows: list[dict[str, Any]]
    if form == "paged":
        try:
            rows = _paged(api, since, stats)
        except PloomesRequestError as exc:
            if not probes.refused(exc, "deleted_deals"):
                raise
            if probes.reprobe(api, api.forms, "deleted_deals", form, exc) == form:
                raise
            rows = _sliced(api, since, stats)
    else:
        rows = _sliced(api, since, stats)
    return {deal: r.get("LastUpdateDate") for deal, r in _keyed(rows).items()}


def _keyed(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Rows by their integer Id; a row without one stops the reconcile (the row shape is I)."""
    wrong = [r.get("Id") for r in rows if not isinstance(r.get("Id"), int) or isinstance(r.get("Id"), bool)]
    if wrong:
        raise PloomesRequestError(
            f"Ploomes {probes.DELETED_DEALS_PATH} answered {len(wrong)} row(s) without an integer Id "
            f"(e.g. {wrong[0]!r}); reconcile stops rather than miss or guess a delete."
        )
    return {r["Id"]: r for r in rows}


def _server_cap(api: PloomesApi, stats: CallStats) -> int:
    """How many rows a list answers at most when asked `$top=TOP`: TOP, or fewer when the server
    cuts `$top` silently (§3, I). One `$select=Id` page of `/Deals`: fewer than TOP rows while
    `@odata.count` (or its absence) says more exist is the cap, taken to hold for every list (I)."""
    params = {"$select": "Id", "$orderby": "Id", "$top": str(TOP), "$count": "true"}
    body = api.get("/Deals", params, stats)
    got, count = len(body.get("value", [])), body.get("@odata.count")
    if 0 < got < TOP and not (isinstance(count, int) and count <= got):
        return got
    return TOP


def _paged(api: PloomesApi, since: dt.datetime, stats: CallStats) -> list[dict[str, Any]]:
    flt = f"LastUpdateDate ge {format_literal(since, api.datetime_literal)}"
    return [r for page in api.iter_filter(probes.DELETED_DEALS_PATH, flt, stats) for r in page]


def _sliced(api: PloomesApi, since: dt.datetime, stats: CallStats) -> list[dict[str, Any]]:
    """The confirmed form over [since, now]: slices halved while an answer fills a page."""
    until = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1)
    since = since.replace(microsecond=0)
    full = _server_cap(api, stats)
    found: dict[int, dict[str, Any]] = {}
    pending = [(since, until, True)]  # (from, to, from inclusive): ge/gt from, le to
    while pending:
        lo, hi, inclusive = pending.pop()
        low = f"LastUpdateDate {'ge' if inclusive else 'gt'} {format_literal(lo, api.datetime_literal)}"
        high = f"LastUpdateDate le {format_literal(hi, api.datetime_literal)}"
        params = {"$filter": f"{low} and {high}", "$top": str(TOP)}
        rows = list(api.get(probes.DELETED_DEALS_PATH, params, stats)["value"])
        stats.pages += 1
        if len(rows) < full:
            found.update(_keyed(rows))
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
