"""How the sandbox Ploomes plays the query forms ploomes-api.md leaves open (`sandbox/readings.py`).

A real server that does not take a form answers 400 (a bad OData query or field, §4) or, for a
listing it cannot serve in time, a gateway timeout (§2: unscoped `/Attachments` listings are slow
or time out). Each check here refuses one such form when its reading says so, so the product's
probes and fallbacks meet every reading over real HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ploomes_cx.sandbox.odata import ODataError, split_top_level

IN_OPERATOR = re.compile(r"\bin\s*\(")
OR_OPERATOR = re.compile(r"\bor\b")
BY_PARENT = re.compile(r"\b(DealId|ContactId|Deal/Id|Contact/Id)\s+(eq|in)\b")
ID_FROM = re.compile(r"(?<![/\w])Id\s+(gt|ge)\s+\d+")
ID_TO = re.compile(r"(?<![/\w])Id\s+(lt|le)\s+\d+")
PAGING = re.compile(r"(?<![/\w])Id\s+(gt|ge|lt|le)\b")


class Refusal(ODataError):
    """A form this reading's server does not take; `status` is what it answers (400, or 504)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def check_filter(readings: Mapping[str, str], flt: str) -> None:
    """`in (...)` and `or`: §2 lists neither among the operators seen (`or` is I, `in` absent)."""
    if readings["id_in"] == "400" and IN_OPERATOR.search(flt):
        raise Refusal("The query specified in the URI is not valid: the 'in' operator is not supported")
    if readings["or_filter"] == "400" and OR_OPERATOR.search(flt):
        raise Refusal("The query specified in the URI is not valid: 'or' is not supported here")


def check_list(readings: Mapping[str, str], entity_set: str, query: Mapping[str, str], by_key: bool) -> None:
    """The forms an entity list may refuse under its readings (a read by key is always served)."""
    flt = query.get("$filter", "")
    dated = "LastUpdateDate" in flt or "LastUpdateDate" in query.get("$orderby", "")
    if entity_set in ("Orders", "Quotes") and readings["orders_quotes_last_update"] == "400" and dated:
        raise Refusal(f"Could not find a property named 'LastUpdateDate' on type '{entity_set[:-1]}'")
    if entity_set == "Attachments" and not by_key and readings["attachments_unscoped"] != "listed":
        scoped = BY_PARENT.search(flt) or (ID_FROM.search(flt) and ID_TO.search(flt))
        if not scoped:
            if readings["attachments_unscoped"] == "400":
                raise Refusal("Attachments must be filtered by DealId, ContactId or an Id range")
            raise Refusal("The operation has timed out (unscoped Attachments listing)", 504)


def check_deleted_deals(readings: Mapping[str, str], query: Mapping[str, str]) -> None:
    """`GetDeletedDeals` is shown with `$filter=LastUpdateDate ge <ts>` only (§9, C [S2]). Under
    `400` it takes no paging (`$orderby`, `$skip`, a filter on `Id`); `$top`, the page size every
    list takes (§3), it takes, so a caller can tell a full page from a complete answer."""
    if readings["deleted_deals_paging"] != "400":
        return
    asked = [k for k in ("$orderby", "$skip") if k in query]
    if asked or PAGING.search(query.get("$filter", "")):
        raise Refusal(f"GetDeletedDeals does not support {', '.join(asked) or 'a filter on Id'}")


def check_select(
    readings: Mapping[str, str], query: Mapping[str, str], fields: set[str], navigation: set[str]
) -> None:
    """Under `unknown_select: 400` a `$select` or `$expand` naming what the entity lacks is a 400
    (§4: 400 is a bad OData query or field); by default such names are ignored."""
    if readings["unknown_select"] != "400":
        return
    selected = split_top_level(query.get("$select", ""))
    expanded = [p.split("(")[0] for p in split_top_level(query.get("$expand", ""))]
    wrong = [s for s in selected if s not in fields] + [e for e in expanded if e not in navigation]
    if wrong:
        raise Refusal(f"Could not find a property named '{wrong[0]}'")
