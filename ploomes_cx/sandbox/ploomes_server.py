"""A local Ploomes API: real HTTP on 127.0.0.1, the OData subset our client uses.

It enforces what the real service is known or believed to enforce (ploomes-api.md): the
`User-Key` header, a per-key rate limit answered with 429 (sometimes with `Retry-After`, since
whether Ploomes sends it is unknown), and a page-size cap that either truncates silently or
refuses (`top_cap_mode`, since which one Ploomes does is unknown). Dates are written with an
offset or without one (`date_offsets`), both variants seen in public material.

Admin endpoints under `/_sandbox/` (no key needed) let tests and operators in another process
inject faults and change records.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

from ploomes_cx.sandbox.clock import ACCOUNT_TZ, ms_to_local_text
from ploomes_cx.sandbox.faults import FaultPlan, TokenBucket
from ploomes_cx.sandbox.http import JsonHandler, LoopbackServer
from ploomes_cx.sandbox.odata import FilterEvaluator, ODataError, parse_orderby, split_top_level
from ploomes_cx.sandbox.ploomes_data import PloomesDataset
from ploomes_cx.sandbox.ploomes_fields import fields_catalogue
from ploomes_cx.sandbox.ploomes_readings import check_deleted_deals, check_filter, check_list, check_select
from ploomes_cx.sandbox.ploomes_webhooks import WebhookRegistry
from ploomes_cx.sandbox.readings import for_api

ENTITY_SETS = {
    "Contacts": "contacts",
    "Deals": "deals",
    "Orders": "orders",
    "Quotes": "quotes",
    "InteractionRecords": "notes",
    "Tasks": "tasks",
    "Attachments": "attachments",
}
BY_KEY = re.compile(r"([A-Za-z]+)\((\d+|'[^']*')\)")
NAVIGATION = {"Phones", "OtherProperties", "Products", "Users", "Attachments", "Product"}
DATE_COLUMNS = {"LastUpdateDate", "CreateDate", "FinishDate"}


class PloomesSandbox:
    """Owns the dataset, the HTTP server thread and the knobs tests turn."""

    def __init__(
        self,
        dataset: PloomesDataset | None = None,
        user_key: str = "sandbox-ploomes-key",
        host: str = "127.0.0.1",
        port: int = 0,
        requests_per_minute: float = 120,
        burst: int = 5,
        max_top: int = 300,
        top_cap_mode: str = "truncate",
        date_offsets: bool = True,
        supports_count: bool = True,
        webhook_key_echo: str = "header",
        readings: Mapping[str, str] | None = None,
        max_url_length: int | None = None,
        default_top: int | None = None,
    ) -> None:
        # the open readings of ploomes-api.md this server plays (`sandbox/readings.py`)
        self.readings = for_api("ploomes", readings)
        self.dataset = dataset or PloomesDataset()
        self.user_key = user_key
        self.max_top = max_top
        # a front server refusing a long URL with a 400 (IIS, gateways); None: any length is served
        self.max_url_length = max_url_length
        # the page size of a list asked without `$top` (§3: unknown, I); None: `max_top`
        self.default_top = default_top
        self.top_cap_mode = top_cap_mode
        self.date_offsets = date_offsets
        self.supports_count = supports_count  # (I) whether Ploomes honours $count is not confirmed
        self.faults = FaultPlan()
        # (I) how Ploomes sends the ValidationKey back is not confirmed: header, body or both
        self.webhooks = WebhookRegistry(self.dataset, key_echo=webhook_key_echo)
        self.bucket = TokenBucket(requests_per_minute, burst)
        self.requests: list[tuple[float, str]] = []  # (monotonic time, path?query)
        self.rate_limited = 0
        self._lock = threading.Lock()
        self._server = LoopbackServer(_handler_for(self), host, port, "ploomes-sandbox")

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> PloomesSandbox:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def set_rate_limit(self, requests_per_minute: float, burst: int = 5) -> None:
        self.bucket = TokenBucket(requests_per_minute, burst)

    def touch(
        self, entity: str, record_id: int, changes: dict[str, Any] | None = None, when_ms: int | None = None
    ) -> None:
        """A CRM user's change: the record changes, and the webhooks registered for it are called."""
        table = self.dataset.tables[entity]
        old = self.dataset.render(entity, table.index_of(record_id), with_offset=False)
        self.dataset.touch(entity, record_id, changes, when_ms)
        new = self.dataset.render(entity, table.index_of(record_id), with_offset=False)
        self.webhooks.changed(entity, record_id, old, new)

    def delete(self, entity: str, record_id: int, when_ms: int | None = None) -> None:
        """A CRM user's delete: the record vanishes from lists, and its webhooks are called."""
        table = self.dataset.tables[entity]
        old = self.dataset.render(entity, table.index_of(record_id), with_offset=False)
        self.dataset.delete(entity, record_id, when_ms)
        self.webhooks.changed(entity, record_id, old, None)

    def __enter__(self) -> PloomesSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- request handling (called from handler threads) -----------------------------------
    def list_entity(
        self, entity_set: str, query: dict[str, str], short_page: bool = False, by_key: bool = False
    ) -> tuple[int, dict[str, Any]]:
        """A list answer, or with `by_key` the answer to `/<Set>(id)` (one entity, as a list)."""
        if entity_set == "Fields":
            return 200, self._fields(query)
        if entity_set == "Account":
            account = {"Id": 1, "Name": "Conta Sandbox"}
            check_select(self.readings, query, set(account), set())
            select = split_top_level(query.get("$select", "")) or list(account)
            return 200, {
                "@odata.context": f"{self.url}/$metadata#Account",
                "value": [{k: v for k, v in account.items() if k in select}],
            }
        table = self.dataset.tables[ENTITY_SETS[entity_set]]
        check_list(self.readings, entity_set, query, by_key)
        fields = set(self.dataset.render(table.name, 0, False)) if len(table) else {"Id"}
        check_select(self.readings, query, fields, NAVIGATION)
        cols = table.cols
        live = ~np.isin(cols["Id"], self.dataset.deleted_ids(table.name))  # deleted rows vanish (§9)
        idx, total = self._select_rows(cols, live, query, short_page)
        expand = {part.split("(")[0] for part in split_top_level(query.get("$expand", ""))}
        select = set(split_top_level(query.get("$select", ""))) if query.get("$select") else None
        rows = [self._shape(self._as_served(table.name, int(i), by_key), expand, select) for i in idx]
        return 200, self._body(entity_set, rows, total, query)

    def _as_served(self, entity: str, i: int, by_key: bool) -> dict[str, Any]:
        """A record as this reading serves it: with `attachments_url=by_id_only` a list leaves an
        attachment's `Url` out and only `/Attachments(id)` has it (ploomes-api.md §6, C [S6])."""
        record = self.dataset.render(entity, i, self.date_offsets)
        if entity == "attachments" and not by_key and self.readings["attachments_url"] == "by_id_only":
            record.pop("Url", None)
        return record

    def deleted_deals(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """`GET /Deals/GetDeletedDeals` (C [S2], filtered on `LastUpdateDate`): the deleted deals,
        `LastUpdateDate` being when each was deleted. (I) The row shape is not documented; Id,
        Title and that date are served, and the query options work as on any list."""
        check_deleted_deals(self.readings, query)
        check_select(self.readings, query, {"Id", "Title", "LastUpdateDate"}, set())
        deals = self.dataset.tables["deals"]
        deleted = sorted((i, when) for (e, i), when in self.dataset.deleted.items() if e == "deals")
        cols = {
            "Id": np.array([i for i, _ in deleted], dtype=np.int64),
            "LastUpdateDate": np.array([w for _, w in deleted], dtype=np.int64),
        }
        idx, total = self._select_rows(cols, np.ones(len(deleted), dtype=bool), query, False)
        select = set(split_top_level(query.get("$select", ""))) if query.get("$select") else None
        rows = []
        for i in idx:
            deal_id = int(cols["Id"][i])
            title = self.dataset.render("deals", deals.index_of(deal_id), self.date_offsets).get("Title")
            when = ms_to_local_text(int(cols["LastUpdateDate"][i]), self.date_offsets)
            rows.append(self._shape({"Id": deal_id, "Title": title, "LastUpdateDate": when}, set(), select))
        return 200, self._body("Deals", rows, total, query)

    def _select_rows(
        self, cols: dict[str, np.ndarray], keep: np.ndarray, query: dict[str, str], short_page: bool
    ) -> tuple[np.ndarray, int]:
        """Row positions of the page a query asks for ($filter, $orderby, $skip, $top), and how many
        rows match in all (for `$count`)."""
        flt = query.get("$filter", "")
        check_filter(self.readings, flt)
        mask = keep.copy()
        if flt:
            mask &= FilterEvaluator(flt, cols, DATE_COLUMNS & set(cols), ACCOUNT_TZ).evaluate()
        idx = np.flatnonzero(mask)
        order = parse_orderby(query.get("$orderby", "Id"), cols)
        if order != [("Id", False)]:
            keys = [(-cols[name][idx] if desc else cols[name][idx]) for name, desc in reversed(order)]
            idx = idx[np.lexsort(keys)]
        top = self._top(query)
        skip = int(query.get("$skip", "0") or 0)
        page = idx[skip : skip + top]
        if short_page:
            page = page[: max(1, len(page) // 2)] if len(page) > 1 else page
        return page, len(idx)

    def _body(self, entity_set: str, rows: list[dict[str, Any]], total: int, query: dict[str, str]) -> dict:
        body: dict[str, Any] = {"@odata.context": f"{self.url}/$metadata#{entity_set}", "value": rows}
        if self.supports_count and query.get("$count", "").lower() == "true":
            body["@odata.count"] = total
        return body

    def _top(self, query: dict[str, str]) -> int:
        raw = query.get("$top")
        if raw is None:
            return self.max_top if self.default_top is None else min(self.default_top, self.max_top)
        try:
            top = int(raw)
        except ValueError:
            raise ODataError(f"$top must be an integer, got {raw!r}") from None
        if top < 0:
            raise ODataError("$top must not be negative")
        if top > self.max_top:
            if self.top_cap_mode == "error":
                raise ODataError(f"$top may not exceed {self.max_top}")
            return self.max_top
        return top

    def _fields(self, query: dict[str, str]) -> dict[str, Any]:
        rows = fields_catalogue(self.readings["field_type_names"])
        if "_key" in query:
            rows = [r for r in rows if r["Key"] == query["_key"]]
        top = self._top(query)
        skip = int(query.get("$skip", "0") or 0)
        flt = query.get("$filter", "")
        if flt:
            cols = {
                "Id": np.array([r["Id"] for r in rows], dtype=np.int64),
                "EntityId": np.array([r["EntityId"] for r in rows], dtype=np.int64),
            }
            keep = FilterEvaluator(flt, cols, set(), ACCOUNT_TZ).evaluate()
            rows = [r for r, k in zip(rows, keep, strict=True) if k]
        expand = {p.split("(")[0] for p in split_top_level(query.get("$expand", ""))}
        hidden = {"Type", "OptionsTable"} - expand  # navigations come only when expanded
        rows = [{k: v for k, v in r.items() if k not in hidden} for r in rows]
        return {"value": rows[skip : skip + top]}

    @staticmethod
    def _shape(record: dict[str, Any], expand: set[str], select: set[str] | None) -> dict[str, Any]:
        out = {}
        for key, value in record.items():
            if key in NAVIGATION and key not in expand:
                continue
            if select is not None and key not in select and key not in expand:
                continue
            out[key] = value
        return out


def _handler_for(sandbox: PloomesSandbox) -> type[JsonHandler]:
    """A handler class bound to this sandbox (the HTTP server makes one handler per request)."""
    from ploomes_cx.sandbox.ploomes_handler import PloomesHandler  # it reads this module's tables

    return type("Handler", (PloomesHandler,), {"sandbox": sandbox})
