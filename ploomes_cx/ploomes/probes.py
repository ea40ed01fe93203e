"""Probes: one cheap, read-only request per form the spec is unsure of, and the form the sync uses.

Each probe asks `$top=1` (`$select=Id` where a `$select` is safe) with a filter that matches
nothing, so it costs one paced request and reads no data. A refusal means the next form is tried,
down to one the spec confirms (ploomes-api.md §2, §8, §6, §9). Only a 400 (a bad OData query or
field, §4) is a refusal, and for the unscoped `/Attachments` listing also a timeout or 504 that
outlasts the retries (§2 says such listings time out): any other transient failure is an outage,
which fails the run and stores nothing, so one 502 never fixes a slower fallback for good.

- `id_list`: `Id in (...)` (OData 4.01, not in §2), else an `or` chain (I), else `Id eq N`, one
  request per Id (C);
- `orders_window`, `quotes_window`: a `LastUpdateDate` window (§9 confirms the field on Contacts,
  Deals, Tasks and InteractionRecords only), else the orders/quotes of the window's deals
  (`DealId eq N` C [S7], `Deal/Id eq N` C [S8]);
- `attachments_window`: a `CreateDate` window on `/Attachments` (§2: unscoped listings are slow or
  time out), else the set walked in Id windows (`Id gt X and Id le X+W`, fast: C [S6]), the
  attachments created in the window kept;
- `deleted_deals`: `GetDeletedDeals` paged by `$orderby`/`$top`/`Id gt` (shown nowhere), else
  its confirmed form (`$filter=LastUpdateDate ge <ts>`, C [S2]) asked over date slices.

A 401/403 is never read as a refusal: it raises, as on any request. HTTP only through the client.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ploomes_cx.ploomes.base import (
    Answer,
    PloomesError,
    PloomesRequestError,
    PloomesUnavailableError,
    format_literal,
)
from ploomes_cx.ploomes.forms import CAPABILITIES, Forms

DELETED_DEALS_PATH = "/Deals/GetDeletedDeals"
# a one-second window long before any account existed: every dated probe matches nothing
NOTHING_FROM = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
NOTHING_TO = NOTHING_FROM + dt.timedelta(seconds=1)
FAR_FUTURE = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


class Prober(Protocol):
    datetime_literal: str
    log: logging.Logger | logging.LoggerAdapter

    def probe(self, path: str, params: dict[str, str], timeout_refuses: bool = False) -> Answer: ...


@dataclass(frozen=True)
class Probe:
    """The form chosen for a capability, and in words what was asked and answered."""

    capability: str
    form: str
    detail: str


# the one capability whose preferred form may be refused by timing out (§2: unscoped listings)
TIMES_OUT = "attachments_window"


def timed_out(exc: PloomesUnavailableError) -> bool:
    return exc.reason in ("timeout", "HTTP 504")


def refused(exc: PloomesError, capability: str) -> bool:
    """Whether a failed read of `capability`'s form means the account does not take the form
    (try the next one) rather than an outage (raise: the run fails and is retried as it is)."""
    if isinstance(exc, PloomesRequestError):
        return exc.status == 400
    return capability == TIMES_OUT and isinstance(exc, PloomesUnavailableError) and timed_out(exc)


def _refused(answer: Answer) -> str:
    return f"HTTP {answer.status}" if answer.status else answer.reason or "refused"


def _id_list(api: Prober) -> Probe:
    one = {"$top": "1", "$select": "Id"}
    tried = []
    for form, flt in (("in", "Id in (0)"), ("or", "(Id eq 0 or Id eq -1)")):
        answer = api.probe("/Contacts", {**one, "$filter": flt})
        if answer.ok:
            return Probe("id_list", form, f"/Contacts?$filter={flt} taken" + "".join(tried))
        tried.append(f"; `{flt}` refused ({_refused(answer)})")
    return Probe("id_list", "eq", "`Id eq N`, one paced request each" + "".join(tried))


def _window(api: Prober, capability: str, path: str, field: str, fallback: str) -> Probe:
    lo, hi = (format_literal(t, api.datetime_literal) for t in (NOTHING_FROM, NOTHING_TO))
    flt = f"{field} ge {lo} and {field} lt {hi}"
    params = {"$filter": flt, "$orderby": "Id", "$top": "1", "$select": "Id"}
    answer = api.probe(path, params, timeout_refuses=capability == TIMES_OUT)
    if answer.ok:
        return Probe(capability, "window", f"{path}?$filter={field} ge ... taken")
    return Probe(capability, fallback, f"{path}?$filter={field} ge ... refused ({_refused(answer)})")


def _orders(api: Prober) -> Probe:
    return _window(api, "orders_window", "/Orders", "LastUpdateDate", "deals")


def _quotes(api: Prober) -> Probe:
    return _window(api, "quotes_window", "/Quotes", "LastUpdateDate", "deals")


def _attachments(api: Prober) -> Probe:
    return _window(api, "attachments_window", "/Attachments", "CreateDate", "id_windows")


def _deleted_deals(api: Prober) -> Probe:
    since = f"LastUpdateDate ge {format_literal(FAR_FUTURE, api.datetime_literal)}"
    paged = {"$filter": f"{since} and Id gt 0", "$orderby": "Id", "$top": "1"}
    answer = api.probe(DELETED_DEALS_PATH, paged)
    if answer.ok:
        return Probe("deleted_deals", "paged", f"{DELETED_DEALS_PATH} paged by $orderby/$top/Id gt: taken")
    plain = api.probe(DELETED_DEALS_PATH, {"$filter": since})
    status = "taken" if plain.ok else f"refused too ({_refused(plain)})"
    return Probe(
        "deleted_deals",
        "sliced",
        f"paging refused ({_refused(answer)}); date slices of `$filter=LastUpdateDate ge`: {status}",
    )


PROBES: dict[str, Callable[[Prober], Probe]] = {
    "id_list": _id_list,
    "orders_window": _orders,
    "quotes_window": _quotes,
    "attachments_window": _attachments,
    "deleted_deals": _deleted_deals,
}
assert set(PROBES) == set(CAPABILITIES)


def probe(api: Prober, capability: str) -> Probe:
    return PROBES[capability](api)


def decide(api: Prober, forms: Forms, capability: str) -> str:
    """The form to use: the pinned or stored one, else probed now and stored."""
    form = forms.get(capability)
    if form is None:
        found = probe(api, capability)
        forms.set(capability, found.form, found.detail)
        api.log.info(f"Ploomes {capability}: using `{found.form}` ({found.detail})")
        form = found.form
    return form


def reprobe(api: Prober, forms: Forms, capability: str, failed: str, cause: object = "") -> str:
    """After the `failed` form was refused in use: the form to retry with, stored. It is never
    `failed` or one before it, even when the probe takes an earlier one (a probe's short filter
    can pass where the real one is refused: `DealId in (...)`, a URL too long), so the forms
    only move towards the confirmed last one and a retry loop ends. Returns `failed` itself for
    a pinned form (the caller raises the refusal); the last form refused raises."""
    if capability in forms.pinned:
        return failed
    order = CAPABILITIES[capability]
    after = order.index(failed) + 1
    if after == len(order):
        raise PloomesRequestError(
            f"Ploomes refused `{failed}`, the last form of {capability} (the one ploomes-api.md "
            f"confirms), after refusing {', '.join(f'`{f}`' for f in order[:-1])}; nothing more to try. "
            f"Last answer: {cause}",
            400,
        )
    found = probe(api, capability)
    if order.index(found.form) < after:  # the probe was taken, the request was not
        found = Probe(capability, order[after], f"`{failed}` refused in use; the probe took `{found.form}`")
    forms.set(capability, found.form, found.detail)
    api.log.warning(f"Ploomes refused the `{failed}` form of {capability}; now using `{found.form}`")
    return found.form
