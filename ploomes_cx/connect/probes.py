"""`ploomes-cx check`'s probes: per capability the mapping will use, the form the sync will use.

Ploomes (`ploomes/probes.py`): the `Id` list form, the Orders/Quotes and Attachments windows,
`GetDeletedDeals` paging, and `/Attachments(id)` for links lists leave out. Each line also says
what the state folder holds (`ploomes/forms.py`): a sync uses the stored form and probes only what
is not stored. The probes read only: `$top=1`, filters that match nothing. `check` stores nothing
unless asked (`--save-probes`), as the contract's `check` writes nothing.

CustomerX: the listings the load reads (GET /timelines and its `external_id_client` filter; the
`external_id_client`, `email` and `id` filters on /clients, `external_id_contact` and `email` on
/contacts), each asked with a value no record has.
The load already copes with either answer at run time (load/timeline.py, load/adoption.py,
customerx/deletes.py); the line says which way it will go. Nothing is written to CustomerX.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ploomes_cx.customerx.client import CustomerXApi, CustomerXError, CustomerXRejected
from ploomes_cx.mapping import Mapping
from ploomes_cx.plan import Plan
from ploomes_cx.ploomes import probes
from ploomes_cx.ploomes.client import CallStats, PloomesApi, PloomesError
from ploomes_cx.ploomes.forms import Forms

NOBODY = "ploomes-cx-check-matches-nothing"
DEALS_LAG = (
    "an order or quote edited while its deal did not change is read at the deal's next change "
    "(or by a sync of an earlier window)"
)


def capabilities(m: Mapping) -> list[str]:
    """The probed capabilities this mapping's sync and reconcile will use."""
    extracts = Plan.of(m).extracts
    wanted = ["id_list"]
    if "orders" in extracts:
        wanted += ["orders_window", "quotes_window"]
    if "attachments" in extracts:
        wanted.append("attachments_window")
    if "deals" in extracts:
        wanted.append("deleted_deals")
    return wanted


def ploomes_probes(m: Mapping, api: PloomesApi, save: bool) -> Iterator[tuple[str, str, bool]]:
    """(what, detail, ok) per probe; with `save` the chosen forms are written to the state folder.
    The line names the form the sync will use, which is not always the probe's answer: a form the
    mapping pins, else one stored (until refused, or until a stored fallback is old), comes first."""
    pinned = {} if m.ploomes.id_list_filter == "probe" else {"id_list": m.ploomes.id_list_filter}
    stored = Forms.stored(m.name, pinned)
    for capability in capabilities(m):
        found = probes.probe(api, capability)
        held = stored.get(capability)
        if capability in pinned:
            uses, note = pinned[capability], "pinned by the mapping (`ploomes.id_list_filter`)"
        elif save:
            uses, note = found.form, "stored"
        elif held is None:
            uses, note = found.form, "not stored: the first sync probes and stores it"
        else:
            uses, note = held, "stored: used until refused, then probed again"
        if save:
            stored.set(capability, found.form, found.detail)
        detail = (
            f"({found.detail})" if uses == found.form else f"(the probe found `{found.form}`: {found.detail})"
        )
        if uses == "deals":  # the one fallback that can lag: say so where the choice is shown
            note += f"; {DEALS_LAG}"
        yield (f"probe {capability}", f"sync uses `{uses}` {detail}; {note}", True)
    if "attachments" in Plan.of(m).extracts:
        yield _attachment_by_key(api)


def _attachment_by_key(api: PloomesApi) -> tuple[str, str, bool]:
    """`/Attachments(id)`, which the sync reads for a `Url` a list left out (C [S6])."""
    window = {"$filter": "Id gt 0 and Id le 9007199254740991", "$orderby": "Id", "$top": "1", "$select": "Id"}
    try:
        first = api.get("/Attachments", window, CallStats()).get("value", [])
        if not first:
            return (
                "probe attachment by key",
                "the account has no attachment to read by key; not tried",
                True,
            )
        body = api.get(f"/Attachments({int(first[0]['Id'])})", {}, CallStats())
    except PloomesError as exc:
        return (
            "probe attachment by key",
            f"/Attachments(id) refused ({exc}); links lists omit are lost",
            False,
        )
    items = body.get("value", [body])
    has_url = any(isinstance(i, dict) and i.get("Url") for i in items)
    return (
        "probe attachment by key",
        "sync reads /Attachments(id) for attachments listed without `Url`"
        + ("" if has_url else " (this one has no Url either: its entry goes without a link)"),
        True,
    )


def customerx_probes(api: CustomerXApi) -> Iterator[tuple[str, str, bool]]:
    """What the load will do about each CustomerX listing it may read."""
    timelines = _rows(api, "list_timelines", {})
    if timelines is None:
        yield ("probe CustomerX GET /timelines", "refused: an entry in doubt is posted and flagged", True)
    else:
        filtered = _rows(api, "list_timelines", {"external_id_client": NOBODY})
        if not timelines:
            how = "no entries yet to tell whether its filter is honoured; the load checks each answer"
        elif filtered:
            how = "its `external_id_client` filter is ignored: an entry in doubt is looked for in the whole listing, read once"
        else:
            how = "its `external_id_client` filter is honoured: an entry in doubt is looked for by client"
        yield ("probe CustomerX GET /timelines", how, True)
    for param in ("external_id_client", "email", "id"):
        rows = _rows(api, "list_clients", {param: NOBODY if param != "id" else "0"})
        if rows is None or rows:
            how = "not honoured: the load reads the whole /clients listing once instead"
        else:
            how = "honoured (or nothing to tell): the load reads filtered and checks each record it gets"
        yield (f"probe CustomerX /clients?{param}=", how, True)
    for param in ("external_id_contact", "email"):  # the contacts' read-back and adoption
        rows = _rows(api, "list_contacts", {param: NOBODY})
        how = (
            "not honoured: the load reads the whole /contacts listing instead"
            if rows is None or rows
            else None
        )
        yield (f"probe CustomerX /contacts?{param}=", how or "honoured (or nothing to tell)", True)


def _rows(api: CustomerXApi, operation: str, params: dict[str, str]) -> list[Any] | None:
    """The rows of one page-of-one list read, or None when CustomerX refuses it."""
    try:
        rows, _ = api.call(operation, params={**params, "page": "1", "per_page": "1"})
    except CustomerXRejected:
        return None
    except CustomerXError:
        return None
    return rows if isinstance(rows, list) else (rows or {}).get("data", []) if isinstance(rows, dict) else []
