"""The sandbox CustomerX API's HTTP handler: admission (faults, token, rate limit), then the REST calls."""

from __future__ import annotations

import json
import math
import time
from urllib.parse import parse_qs, unquote, urlsplit

from ploomes_cx.sandbox.customerx_server import (
    CANCEL,
    PREFIX,
    RESOURCES,
    CustomerXSandbox,
    Refused,
)
from ploomes_cx.sandbox.faults import retry_after_header
from ploomes_cx.sandbox.http import JsonHandler


class CustomerXHandler(JsonHandler):
    sandbox: CustomerXSandbox

    def _admin(self, method: str, path: str) -> bool:
        if not path.startswith("/_sandbox/"):
            return False
        if path == "/_sandbox/faults" and method == "POST":
            body = self.read_json()
            self.sandbox.faults.inject(
                body["kind"],
                int(body.get("times", 1)),
                body.get("retry_after"),
                float(body.get("delay", 0)),
            )
        elif path == "/_sandbox/faults" and method == "DELETE":
            self.sandbox.faults.clear()
        elif path == "/_sandbox/writes" and method == "GET":
            self.send_json(200, self.sandbox.writes)
            return True
        elif path == "/_sandbox/stats" and method == "GET":
            self.send_json(
                200,
                {
                    "requests": len(self.sandbox.requests),
                    "writes": len(self.sandbox.writes),
                    "rate_limited": self.sandbox.rate_limited,
                    "faults_served": self.sandbox.faults.served,
                },
            )
            return True
        else:
            self.send_json(404, {"message": "unknown sandbox endpoint"})
            return True
        self.send_json(200, {"ok": True})
        return True

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/")
        if self._admin(method, path):
            return
        body = self.read_json() if method in ("POST", "PUT") else None
        with self.sandbox._lock:
            self.sandbox.requests.append((time.monotonic(), method, self.path))
        fault = self.sandbox.faults.take()
        if fault is not None and fault.kind == "429":
            with self.sandbox._lock:
                self.sandbox.rate_limited += 1
        if self.apply_fault(fault, {"message": "Internal server error (injected)"}):
            return
        auth = self.headers.get("Authorization") or ""
        scheme = "bearer" if auth.startswith("Bearer ") else "raw"
        if (
            auth.removeprefix("Bearer ").strip() != self.sandbox.token
            or scheme not in self.sandbox.auth_schemes
        ):
            return self.send_json(401, {"message": "Unauthorized"})
        wait = self.sandbox.bucket.try_take()
        limit_headers = {
            "X-RateLimit-Limit": str(int(self.sandbox.rpm)),
            "X-RateLimit-Remaining": str(max(0, int(self.sandbox.bucket.tokens))),
            "X-RateLimit-Reset": str(max(1, math.ceil(wait or 60 / self.sandbox.rpm))),
        }
        if wait > 0:
            with self.sandbox._lock:
                self.sandbox.rate_limited += 1
                odd = self.sandbox.rate_limited % 2 == 1
            headers = {**limit_headers, **({"Retry-After": retry_after_header(wait)} if odd else {})}
            return self.send_json(429, {"message": "Too many requests"}, headers)
        if not path.startswith(PREFIX + "/"):
            return self.send_json(404, {"message": f"no route {path}"}, limit_headers)
        segments = path[len(PREFIX) + 1 :].split("/")
        resource, extra = segments[0], (unquote(segments[1]) if len(segments) > 1 else None)
        if resource == "cancel_contracts" and len(segments) == 1:  # POST /cancel_contracts (§8.3)
            resource, extra = "contracts", CANCEL
        if method == "GET" and "custom_attributes" in (resource, extra):  # §8.6 lists both paths (LOW)
            if self.sandbox.custom_attributes is None:
                return self.send_json(404, {"message": f"no route {path}"}, limit_headers)
            defined = [
                {"id": n, "label": a, "name": a} for n, a in enumerate(self.sandbox.custom_attributes, 1)
            ]
            return self.send_json(200, defined, limit_headers)
        if resource not in RESOURCES or len(segments) > 2:
            return self.send_json(404, {"message": f"no route {path}"}, limit_headers)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self._answer(method, resource, extra, query, body, fault, limit_headers)

    def _answer(
        self,
        method: str,
        resource: str,
        extra: str | None,
        query: dict[str, str],
        body: object,
        fault: object,
        limit_headers: dict[str, str],
    ) -> None:
        """The API's answer to an admitted request, logged when it writes."""
        with self.sandbox._lock:
            try:
                status, payload, headers = self.sandbox.handle(method, resource, extra, query, body)
            except Refused as exc:
                status, payload, headers = exc.status, {"errors": exc.errors, "message": exc.message}, {}
            if method != "GET":
                self.sandbox.writes.append(
                    {"method": method, "path": self.path, "body": body, "status": status}
                )
                if status < 300:
                    self.sandbox.store.save()
        if getattr(fault, "kind", None) == "malformed":
            data = json.dumps(payload).encode()
            return self.send_json(
                status, None, {**limit_headers, **headers}, raw=data[: max(5, len(data) // 2)]
            )
        self.send_json(status, payload, {**limit_headers, **headers})

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")
