"""A local CustomerX API (`/api/v1`): real HTTP on 127.0.0.1, an in-memory account persisted to a file.

It behaves as shared/specs/customerx-api.md says the real one does, and where the spec lists
variants (I) it accepts all of them: the token raw or as `Bearer`, the external id of an update
in the query (`PUT /clients?external_id_client=X`) or in the path (`PUT /clients/X`), a numeric
id as `?id=N`, the three custom-attribute shapes. It refuses what the real one would: an external
id parameter that no record carries is a 404 even when it looks like a numeric id. Validation
follows §8 and §11: a contact needs `name` and `email`, an e-mail is unique in the account, a
phone number is unique per client, a contact or contract must reference an existing client, an
external id is unique; refusals are 422 with a field-level body. Lists are bare arrays of at
most 20 per page with `X-Total`/`X-Pages`/`X-Page`/`X-Per-Page`; every answer carries
`X-RateLimit-*`, and going over the limit is a 429 (with `Retry-After` every other time).

Every write is logged (`writes`) so tests can count calls; `/_sandbox/` endpoints expose the log
and the fault switches to another process.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import ploomes_cx.sandbox.customerx_readings as play
from ploomes_cx.sandbox.customerx_values import Refused, _custom_attributes, _now, _phone_digits, filtered
from ploomes_cx.sandbox.faults import FaultPlan, TokenBucket
from ploomes_cx.sandbox.http import JsonHandler, LoopbackServer
from ploomes_cx.sandbox.readings import for_api

PREFIX = "/api/v1"
CANCEL = "_cancel"  # our route name for POST /cancel_contracts
RESOURCES = {
    "clients": "external_id_client",
    "contacts": "external_id_contact",
    "contracts": "external_id_contract",
    "timelines": "external_id",
}


class CustomerXStore:
    """The account's records by resource, with integer ids, optionally saved to a JSON file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.records: dict[str, dict[int, dict[str, Any]]] = {r: {} for r in RESOURCES}
        self.next_id = 1
        if path is not None and path.exists():
            saved = json.loads(path.read_text())
            self.records = {r: {int(k): v for k, v in saved["records"].get(r, {}).items()} for r in RESOURCES}
            self.next_id = saved["next_id"]

    def save(self) -> None:
        if self.path is not None:
            tmp = self.path.with_suffix(".tmp")
            tmp.parent.mkdir(parents=True, exist_ok=True)  # the folder may have been reset under us
            tmp.write_text(json.dumps({"records": self.records, "next_id": self.next_id}, ensure_ascii=False))
            tmp.replace(self.path)

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def find(self, resource: str, **match: Any) -> list[dict[str, Any]]:
        return [r for r in self.records[resource].values() if all(r.get(k) == v for k, v in match.items())]

    def by_external_id(self, resource: str, external_id: str) -> dict[str, Any] | None:
        key = RESOURCES[resource]
        return next((r for r in self.records[resource].values() if r.get(key) == external_id), None)


class CustomerXSandbox:
    def __init__(
        self,
        token: str = "sandbox-customerx-token",
        host: str = "127.0.0.1",
        port: int = 0,
        requests_per_minute: float = 60,
        burst: int = 5,
        per_page_cap: int = 20,
        state_file: Path | None = None,
        auth_schemes: tuple[str, ...] = ("raw", "bearer"),
        custom_attributes: list[str] | None = None,
        ignored_filters: frozenset[str] = frozenset(),
        readings: Mapping[str, str] | None = None,
    ) -> None:
        self.readings = for_api("customerx", readings)  # the spec's open questions (sandbox/readings.py)
        self.token = token
        # list filters this server does not know and so ignores (the real API's set is LOW/I,
        # customerx-api.md §8.1, §8.2): a test can prove the load notices an unfiltered answer
        self.ignored_filters = ignored_filters
        # (LOW [S9]) `GET /custom_attributes` and `GET /clients/custom_attributes`: None answers 404,
        # as an account whose API does not list them; a list serves those labels as the attributes
        # defined in the account
        self.custom_attributes = custom_attributes
        # which `Authorization` forms are accepted (§2: raw C2, Bearer seen in S4; unknown whether
        # the server takes both): a test can insist on one to prove the client sends it
        self.auth_schemes = auth_schemes
        self.per_page_cap = per_page_cap
        self.rpm = requests_per_minute
        self.store = CustomerXStore(state_file)
        self.faults = FaultPlan()
        self.bucket = TokenBucket(requests_per_minute, burst)
        self.requests: list[tuple[float, str, str]] = []  # (monotonic time, method, path)
        self.writes: list[dict[str, Any]] = []  # method, path, body, status
        self.rate_limited = 0
        # Test switch: writes to `resource` whose body matches get a 422 (see `refuse`).
        self.refusals: list[tuple[str, Callable[[dict[str, Any]], bool], dict[str, list[str]], int]] = []
        self._lock = threading.Lock()
        self._server = LoopbackServer(_handler_for(self), host, port, "customerx-sandbox")

    def refuse(
        self,
        resource: str,
        when: Callable[[dict[str, Any]], bool],
        errors: dict[str, list[str]],
        status: int = 422,
    ) -> None:
        """Answer `status` (422 by default, 500 for a record that always breaks the server) with
        `errors` to every write to `resource` whose body satisfies `when`."""
        self.refusals.append((resource, when, errors, status))

    @property
    def url(self) -> str:
        """Base URL including the /api/v1 prefix, as CUSTOMERX_BASE_URL holds it."""
        return self._server.url + PREFIX

    def start(self) -> CustomerXSandbox:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> CustomerXSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_rate_limit(self, requests_per_minute: float, burst: int = 5) -> None:
        self.rpm = requests_per_minute
        self.bucket = TokenBucket(requests_per_minute, burst)

    def successful_writes(self) -> list[dict[str, Any]]:
        return [w for w in self.writes if w["status"] < 300]

    # ---- the API, called with the store locked -----------------------------------------------
    def handle(
        self, method: str, resource: str, ext_in_path: str | None, query: dict[str, str], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        store = self.store
        if method == "GET":
            return self._list(resource, query)
        if method == "DELETE":  # clients, contacts, contracts C [S1][S2]; timelines I [S5]
            play.refuse_delete_route(self.readings["delete_by_external_id"], resource, ext_in_path)
            return self._delete(resource, self._target(resource, ext_in_path, query))
        if not isinstance(body, dict):
            raise Refused(400, {"body": ["must be a JSON object"]}, "invalid body")
        for target, when, errors, status in self.refusals:
            if target == resource and when(body):
                raise Refused(status, errors, "; ".join(f"{k} {', '.join(v)}" for k, v in errors.items()))
        if method == "POST" and ext_in_path == "create_or_update":
            key = RESOURCES[resource]
            existing = store.by_external_id(resource, body.get(key)) if body.get(key) else None
            if existing is None and resource == "contacts" and body.get("email"):
                existing = next(iter(store.find("contacts", email=str(body["email"]).lower())), None)
            if existing is not None:
                return 200, self._update(resource, existing, body), {}
            return 201, self._create(resource, body), {}
        if method == "POST" and resource == "contracts" and ext_in_path in (CANCEL, "reactivate_contract"):
            return 200, self._set_contract_status(body, cancel=ext_in_path == CANCEL), {}
        if method == "POST" and ext_in_path is None:
            return 201, self._create(resource, body), {}
        if method == "PUT":
            return 200, self._update(resource, self._target(resource, ext_in_path, query), body), {}
        raise Refused(405, {}, f"{method} is not supported here")

    def _target(self, resource: str, ext_in_path: str | None, query: dict[str, str]) -> dict[str, Any]:
        """The record an update names (§7): an external id in the query (`?external_id_client=X`,
        S4), which is only ever an external id (a number no record carries as one is a 404, not
        an id); a numeric id (`?id=N`, S2); or the path (`PUT /clients/X`, S2), where the spec has
        the fake accept an external id or a numeric id."""
        key = RESOURCES[resource]
        if ext_in_path:  # S2's path form names an external id; a numeric id there works too (I)
            found = self.store.by_external_id(resource, ext_in_path)
            if found is None and ext_in_path.isdigit():
                found = self.store.records[resource].get(int(ext_in_path))
            if found is None:
                raise Refused(404, {key: ["not found"]}, f"no {resource[:-1]} {ext_in_path}")
            return found
        if query.get(key):
            found = self.store.by_external_id(resource, query[key])
            if found is None:
                raise Refused(404, {key: ["not found"]}, f"no {resource[:-1]} with {key} {query[key]}")
            return found
        if query.get("id"):
            raw = query["id"]
            found = self.store.records[resource].get(int(raw)) if raw.isdigit() else None
            if found is None:
                raise Refused(404, {"id": ["not found"]}, f"no {resource[:-1]} with id {raw}")
            return found
        raise Refused(400, {key: ["is required to update"]}, f"say which record: ?{key}=... or ?id=...")

    def _delete(self, resource: str, record: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        """`DELETE /clients|contacts|contracts` by external id (C [S1]) or numeric id (C [S2]), and
        `DELETE /timelines/{id}` (I [S5]). (I)
        What becomes of a deleted client's contacts and contracts is not documented: they stay,
        pointing at no client, and are served without one."""
        del self.store.records[resource][record["id"]]
        return 200, {"id": record["id"], "deleted": True}, {}

    def _list(self, resource: str, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        rows = list(self.store.records[resource].values())
        if resource in ("contacts", "contracts"):
            rows = [self._with_client(r) for r in rows]
        if resource == "clients":  # derived, and a filter: computed before filtering
            rows = [{**r, "contract_status": self._contract_status(r["id"])} for r in rows]
        if resource == "timelines":
            clients = self.store.records["clients"]
            rows = [play.timeline_as_served(self.readings, r, clients) for r in rows]
            if self.readings["timeline_filter"] == "honoured" and query.get("external_id_client"):
                rows = [r for r in rows if self._client_ext(r) == query["external_id_client"]]
        rows = filtered(resource, rows, query, self.ignored_filters)
        page = max(1, int(query.get("page", "1") or 1))
        size = query.get("per_page") or query.get("max_results") or str(self.per_page_cap)
        per_page = max(1, min(self.per_page_cap, int(size)))
        pages = max(1, math.ceil(len(rows) / per_page))
        chunk = rows[(page - 1) * per_page : page * per_page]
        headers = {
            "X-Total": str(len(rows)),
            "X-Pages": str(pages),
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
        }
        return 200, chunk, headers

    def _set_contract_status(self, body: dict[str, Any], cancel: bool) -> dict[str, Any]:
        """`POST /cancel_contracts` and `POST /contracts/reactivate_contract` (§8.3; body fields I):
        the contract named by `external_id_contract`, cancelled as of `cancellation_date` or active
        again; dates are DD/MM/YYYY like every CustomerX business date (§3)."""
        ext = body.get("external_id_contract")
        contract = self.store.by_external_id("contracts", ext) if ext else None
        if contract is None:
            raise Refused(404, {"external_id_contract": ["not found"]}, f"no contract {ext}")
        field = "cancellation_date" if cancel else "reactivation_date"
        if not re.fullmatch(r"\d{2}/\d{2}/\d{4}", str(body.get(field) or "")):
            raise Refused(422, {field: ["must be a date DD/MM/YYYY"]}, f"{field} must be a date DD/MM/YYYY")
        if cancel:
            contract.update(
                status="canceled",
                cancellation_date=body[field],
                cancellation_reason=body.get("cancellation_reason"),
            )
        else:
            contract.update(status="active", cancellation_date=None, cancellation_reason=None)
        contract["updated_at"] = _now()
        return contract

    def _client_ext(self, record: dict[str, Any]) -> str | None:
        client = self.store.records["clients"].get(record.get("client_id"))
        return None if client is None else client.get("external_id_client")

    def _with_client(self, record: dict[str, Any]) -> dict[str, Any]:
        """A record that belongs to a client, as served: linked by `client_id`, so its client's
        external id is the client's current one (`client{id, external_id_client}`, §8.2 [S2])."""
        client = self.store.records["clients"].get(record.get("client_id"))
        if client is None:
            return dict(record)
        ext = client.get("external_id_client")
        summary = {"id": client["id"], "external_id_client": ext, "company_name": client.get("company_name")}
        return {**record, "external_id_client": ext, "client": summary}

    def _client_for(self, body: dict[str, Any]) -> dict[str, Any]:
        ext = body.get("external_id_client")
        client = self.store.by_external_id("clients", ext) if ext else None
        if client is None:
            raise Refused(
                422,
                {"external_id_client": ["client not found"]},
                f"no client with external_id_client {ext!r}",
            )
        return client

    def _contract_status(self, client_id: int) -> str:
        """Derived from the client's contracts (§8.1: computed, never accepted on a write)."""
        statuses = {c.get("status") for c in self.store.find("contracts", client_id=client_id)}
        if not statuses:
            return "without_contract"
        return "active_contract" if "active" in statuses else "contract_canceled"

    def _phone_taken(self, contact: dict[str, Any]) -> str | None:
        """A phone number of `contact` another contact of the same client has (§8.2: unique per client)."""
        mine = {_phone_digits(p) for p in contact.get("phones") or []} - {""}
        if not mine or contact.get("client_id") is None:
            return None
        for other in self.store.find("contacts", client_id=contact["client_id"]):
            if other["id"] != contact.get("id"):
                shared = mine & {_phone_digits(p) for p in other.get("phones") or []}
                if shared:
                    return sorted(shared)[0]
        return None

    def _client_id(self, record: dict[str, Any], errors: dict[str, list[str]]) -> int | None:
        """The id of the client a record names; a missing client is one more field error."""
        try:
            return self._client_for(record)["id"]
        except Refused as exc:
            for k, v in exc.errors.items():
                errors.setdefault(k, []).extend(v)
            return None

    def _create(self, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        store = self.store
        key = RESOURCES[resource]
        if body.get(key) and store.by_external_id(resource, body[key]) is not None:
            play.refuse_duplicate(self.readings["duplicate_create"], key, body[key])
        record: dict[str, Any] = {"id": 0, "created_at": _now(), "updated_at": _now()}
        self._apply(resource, record, body, creating=True)
        record["id"] = store.new_id()
        store.records[resource][record["id"]] = record
        return record

    def _update(self, resource: str, record: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        candidate = dict(record)
        self._apply(resource, candidate, body, creating=False)
        candidate["updated_at"] = _now()
        record.clear()
        record.update(candidate)
        return record

    def _apply(self, resource: str, record: dict[str, Any], body: dict[str, Any], creating: bool) -> None:
        """Partial update semantics (§3 PUT): only keys present change; validation as §11."""
        errors: dict[str, list[str]] = {}
        previous_client = record.get("external_id_client")
        for k, v in body.items():
            if k in ("id", "contract_status", "client_id", "updated_at"):
                continue  # the server's own fields: never taken from a request
            if k == "created_at" and resource != "timelines":
                continue  # a timeline entry's created_at is the event's own date (§8.4, C [S8])
            if k == "custom_attributes":
                record[k] = play.attributes_after(
                    self.readings["attributes"], record.get(k), _custom_attributes(v), creating
                )
            elif k in ("contract_value", "value"):
                try:
                    record["contract_value"] = None if v is None else f"{float(v):.2f}"
                except (TypeError, ValueError):
                    errors.setdefault(k, []).append("is not a number")
            else:
                record[k] = v
        key = RESOURCES[resource]
        if not creating and record.get(key):
            holder = self.store.by_external_id(resource, record[key])
            if holder is not None and holder["id"] != record.get("id"):
                errors.setdefault(key, []).append("has already been taken")
        if resource == "clients":
            if not record.get("company_name"):
                errors.setdefault("company_name", []).append("can't be blank")
            if record.get("cnpj_cpf") and not str(record["cnpj_cpf"]).isalnum():
                errors.setdefault("cnpj_cpf", []).append("must be digits only")
        elif resource == "contacts":
            if not record.get("name"):
                errors.setdefault("name", []).append("can't be blank")
            email = str(record.get("email") or "").strip().lower()
            if not email:
                errors.setdefault("email", []).append("can't be blank")
            else:
                record["email"] = email
                clash = [c for c in self.store.find("contacts", email=email) if c["id"] != record.get("id")]
                if clash:
                    errors.setdefault("email", []).append("has already been taken")
            if creating or "external_id_client" in body:
                if not creating and body.get("external_id_client") != previous_client:
                    errors.setdefault("external_id_client", []).append("cannot be changed")
                else:
                    record["client_id"] = self._client_id(record, errors)
            clash = self._phone_taken(record)
            if clash:
                errors.setdefault("phones", []).append(f"{clash} has already been taken for this client")
        elif resource == "contracts":
            record["client_id"] = self._client_id(record, errors)
            record.setdefault("status", "active")
        elif resource == "timelines":
            record["client_id"] = self._client_id(record, errors)
            if not record.get("title") and not record.get("body"):
                errors.setdefault("body", []).append("title or body is required")
        if errors:
            raise Refused(422, errors, "; ".join(f"{k} {', '.join(v)}" for k, v in errors.items()))


def _handler_for(sandbox: CustomerXSandbox) -> type[JsonHandler]:
    """A handler class bound to this sandbox (the HTTP server makes one handler per request)."""
    from ploomes_cx.sandbox.customerx_handler import CustomerXHandler  # it reads this module's tables

    return type("Handler", (CustomerXHandler,), {"sandbox": sandbox})
