"""The sandbox Ploomes API's HTTP handler: admission (faults, User-Key, rate limit), then OData
reads and the `/Webhooks` registry (`ploomes_webhooks.py`)."""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from ploomes_cx.sandbox.faults import retry_after_header
from ploomes_cx.sandbox.http import JsonHandler
from ploomes_cx.sandbox.odata import ODataError
from ploomes_cx.sandbox.ploomes_server import (
    BY_KEY,
    ENTITY_SETS,
    PloomesSandbox,
)
from ploomes_cx.sandbox.ploomes_webhooks import WebhookError

WEBHOOK_BY_KEY = re.compile(r"/Webhooks\((\d+)\)")


class PloomesHandler(JsonHandler):
    sandbox: PloomesSandbox

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        body = self.read_json()
        if path == "/_sandbox/faults":
            self.sandbox.faults.inject(
                body["kind"],
                int(body.get("times", 1)),
                body.get("retry_after"),
                float(body.get("delay", 0)),
            )
            return self.send_json(200, {"ok": True})
        if path == "/_sandbox/touch":  # a record changed by a CRM user: its webhooks are called
            self.sandbox.touch(body["entity"], int(body["id"]), body.get("changes"), body.get("when_ms"))
            return self.send_json(200, {"ok": True})
        if path == "/_sandbox/delete":  # a record deleted (or merged away) by a CRM user
            self.sandbox.delete(body["entity"], int(body["id"]), body.get("when_ms"))
            return self.send_json(200, {"ok": True})
        if path == "/_sandbox/webhooks/switch":  # the next callbacks dropped or sent twice
            self.sandbox.webhooks.switch(body["kind"], int(body.get("times", 1)))
            return self.send_json(200, {"ok": True})
        if path == "/Webhooks":
            return self._webhooks(lambda: self.sandbox.webhooks.register(body))
        self.send_json(405, {"error": {"message": "the sandbox Ploomes API only writes /Webhooks"}})

    def do_PATCH(self) -> None:
        body = self.read_json()
        match = WEBHOOK_BY_KEY.fullmatch(urlsplit(self.path).path)
        if match is None:
            return self.send_json(
                405, {"error": {"message": "the sandbox Ploomes API only writes /Webhooks"}}
            )
        self._webhooks(lambda: self.sandbox.webhooks.update(int(match.group(1)), body))

    def do_DELETE(self) -> None:
        path = urlsplit(self.path).path
        if path == "/_sandbox/faults":
            self.sandbox.faults.clear()
            return self.send_json(200, {"ok": True})
        match = WEBHOOK_BY_KEY.fullmatch(path)
        if match is None:
            return self.send_json(
                405, {"error": {"message": "the sandbox Ploomes API only writes /Webhooks"}}
            )
        self._webhooks(lambda: self.sandbox.webhooks.remove(int(match.group(1))))

    def _webhooks(self, act: Any) -> None:
        """Admit, then run one registry call: 400 for a refused body, 404 for an unknown Id."""
        admitted, _ = self._admit()
        if not admitted:
            return None
        try:
            result = act()
        except WebhookError as exc:
            return self.send_json(400, {"error": {"message": str(exc)}})
        except KeyError:
            return self.send_json(404, {"error": {"message": f"No entity found for {self.path}"}})
        if result is None:
            return self.send_empty(204)
        return self.send_json(
            200, {"@odata.context": f"{self.sandbox.url}/$metadata#Webhooks", "value": [result]}
        )

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/")
        if path == "/_sandbox/stats":
            stats = {
                "requests": len(self.sandbox.requests),
                "rate_limited": self.sandbox.rate_limited,
                "faults_served": self.sandbox.faults.served,
            }
            return self.send_json(200, stats)
        if path == "/_sandbox/webhooks/deliveries":
            self.sandbox.webhooks.idle()
            return self.send_json(200, [vars(d) for d in self.sandbox.webhooks.deliveries])
        if path.startswith("/Webhooks") or path == "/Fields@Entities":
            return self._webhook_reads(path)
        admitted, fault = self._admit()
        if not admitted:
            return None
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if self.sandbox.max_url_length is not None and len(self.path) > self.sandbox.max_url_length:
            return self.send_json(400, {"error": {"message": "Bad Request - Invalid URL (too long)"}})
        if path == "/Deals/GetDeletedDeals":  # §9, C [S2]
            try:
                return self.send_json(*self.sandbox.deleted_deals(query))
            except ODataError as exc:
                return self.send_json(getattr(exc, "status", 400), {"error": {"message": str(exc)}})
        entity_set, by_key = self._resolve(path.lstrip("/"), query)
        singletons = ("Fields",) if by_key else ("Fields", "Account")  # the Account is not read by key
        if entity_set not in ENTITY_SETS and entity_set not in singletons:
            return self.send_json(404, {"error": {"message": f"No resource found for {path}"}})
        try:
            status, body = self.sandbox.list_entity(
                entity_set, query, bool(fault and fault.kind == "short_page"), by_key
            )
        except ODataError as exc:  # a refused form: 400, or 504 for a listing that times out
            return self.send_json(getattr(exc, "status", 400), {"error": {"message": str(exc)}})
        if by_key and not body["value"]:
            return self.send_json(404, {"error": {"message": f"No entity found for {path}"}})
        if fault and fault.kind == "malformed":
            data = json.dumps(body).encode()
            return self.send_json(status, None, raw=data[: max(10, len(data) // 2)])
        return self.send_json(status, body)

    def _webhook_reads(self, path: str) -> None:
        admitted, _ = self._admit()
        if not admitted:
            return None
        hooks = self.sandbox.webhooks
        match = WEBHOOK_BY_KEY.fullmatch(path)
        if path == "/Webhooks@Actions":
            rows = hooks.catalogue("actions")
        elif path == "/Fields@Entities":
            rows = hooks.catalogue("entities")
        elif path == "/Webhooks":  # a list like any other: $filter, $orderby, $top, $count
            listed = hooks.listed()
            cols = {
                k: np.array([h[k] for h in listed], dtype=np.int64) for k in ("Id", "EntityId", "ActionId")
            }
            query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
            try:
                idx, total = self.sandbox._select_rows(cols, np.ones(len(listed), bool), query, False)
            except ODataError as exc:
                return self.send_json(400, {"error": {"message": str(exc)}})
            return self.send_json(200, self.sandbox._body("Webhooks", [listed[i] for i in idx], total, query))
        elif match is not None:
            rows = [h for h in hooks.listed() if h["Id"] == int(match.group(1))]
            if not rows:
                return self.send_json(404, {"error": {"message": f"No entity found for {path}"}})
        else:
            return self.send_json(404, {"error": {"message": f"No resource found for {path}"}})
        self.send_json(
            200, {"@odata.context": f"{self.sandbox.url}/$metadata#{path.lstrip('/')}", "value": rows}
        )

    def _admit(self) -> tuple[bool, Any]:
        """Count the request, then serve an injected fault, a 401 or a 429 before any data;
        returns whether the request goes on, and the fault that shapes its answer."""
        with self.sandbox._lock:
            self.sandbox.requests.append((time.monotonic(), self.path))
        fault = self.sandbox.faults.take()
        if fault is not None and fault.kind == "429":
            with self.sandbox._lock:
                self.sandbox.rate_limited += 1
        if self.apply_fault(fault, {"error": {"message": "Internal server error (injected)"}}):
            return False, fault
        if self.headers.get("User-Key") != self.sandbox.user_key:
            self.send_json(401, {"error": {"message": "Invalid or missing User-Key"}})
            return False, fault
        wait = self.sandbox.bucket.try_take()
        if wait > 0:
            with self.sandbox._lock:
                self.sandbox.rate_limited += 1
                odd = self.sandbox.rate_limited % 2 == 1
            headers = {"Retry-After": retry_after_header(wait)} if odd else {}
            self.send_json(429, {"error": {"message": "Rate limit exceeded"}}, headers)
            return False, fault
        return True, fault

    @staticmethod
    def _resolve(entity_set: str, query: dict[str, str]) -> tuple[str, bool]:
        """`/Deals(123)`, `/Fields('contact_x')`: one entity, still served as a `value` list (§1),
        by adding its key to the query. Returns the entity set and whether a key was given."""
        by_key = BY_KEY.fullmatch(entity_set)
        if not by_key:
            return entity_set, False
        entity_set, key = by_key.group(1), by_key.group(2)
        if key.startswith("'"):
            query["_key"] = key.strip("'")
        else:
            clause = f"Id eq {key}"
            query["$filter"] = f"({query['$filter']}) and {clause}" if query.get("$filter") else clause
        return entity_set, True
