"""HTTP client for the Ploomes OData API: auth, pacing, retries and window paging. No frames here.

Paging is keyset on `Id` inside a closed change-date window: `$filter=<window> and Id gt <last>`,
`$orderby=Id` (the pattern of public code, ploomes-api.md §3). Within a fixed window the Id is a
unique, exact integer, so records that share a `LastUpdateDate` at a page edge are neither skipped
nor repeated, and a short page mid-set only costs one more request: paging stops on an empty page,
or on a short page once `@odata.count` (asked for on the first page) says everything has arrived.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ploomes_cx.ploomes.entities import EntitySpec
from ploomes_cx.runtime.pacing import Pacer
from ploomes_cx.runtime.retry import RetryPolicy, Transient

log = logging.getLogger(__name__)
DELETED_DEALS_PATH = "/Deals/GetDeletedDeals"


class PloomesError(Exception):
    """An error a person can act on; messages never contain the key."""


class PloomesAuthError(PloomesError):
    pass


class PloomesRequestError(PloomesError):
    """A 4xx other than 401/403/429: retrying would not help."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PloomesUnavailableError(PloomesError):
    """Transient failures outlasted every retry."""


@dataclass
class CallStats:
    """What one extraction cost; it ends up in the materialization metadata."""

    requests: int = 0
    retries: int = 0
    pages: int = 0
    records: int = 0
    rate_limited: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def format_literal(moment: dt.datetime, style: str) -> str:
    """An OData date literal. (I) `offset` is the form seen in public code; `utc` the Z form."""
    if moment.tzinfo is None:
        raise ValueError("window bounds must be time-zone aware")
    if style == "utc":
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.isoformat(timespec="seconds")


class PloomesApi:
    """One configured connection to one Ploomes account."""

    def __init__(
        self,
        base_url: str,
        user_key: str,
        *,
        user_key_env: str = "PLOOMES_USER_KEY",
        requests_per_minute: float = 120,
        page_size: int = 300,
        timeout_seconds: float = 60.0,
        max_attempts: int = 8,
        backoff_initial_seconds: float = 1.0,
        backoff_max_seconds: float = 60.0,
        datetime_literal: str = "offset",
        id_list_filter: str = "in",
        ids_per_request: int = 100,
        pacing_file: Path | None = None,
        logger: logging.Logger | logging.LoggerAdapter | None = None,
    ) -> None:
        self.log = logger or log
        self.base_url = base_url.rstrip("/")
        self.user_key_env = user_key_env
        self.page_size = page_size
        self.max_attempts = max_attempts
        self.datetime_literal = datetime_literal
        self.id_list_filter = id_list_filter
        self.ids_per_request = ids_per_request
        self.pacer = Pacer(requests_per_minute, pacing_file)
        self.retry = RetryPolicy(max_attempts, backoff_initial_seconds, backoff_max_seconds)
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"User-Key": user_key, "Accept": "application/json"},
            timeout=httpx.Timeout(timeout_seconds, connect=min(10.0, timeout_seconds)),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PloomesApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- one request, retried ----------------------------------------------------------------
    def get(self, path: str, params: dict[str, str], stats: CallStats | None = None) -> dict[str, Any]:
        stats = stats if stats is not None else CallStats()

        try:
            return self.retry.run(
                lambda: self._once(path, params, stats), stats, f"Ploomes GET {path}", self.log
            )
        except Transient as exc:
            raise PloomesUnavailableError(
                f"Ploomes GET {path} kept failing after {self.max_attempts} attempts (last: {exc.reason}). "
                f"Check {self.base_url} is reachable and retry the run; nothing was written for this window."
            ) from None

    def _once(self, path: str, params: dict[str, str], stats: CallStats) -> dict[str, Any]:
        self.pacer.wait()
        stats.requests += 1
        try:
            response = self._http.get(path, params=params)
        except httpx.TimeoutException:
            raise Transient("timeout") from None
        except httpx.TransportError as exc:  # refused, reset, dropped mid-response
            raise Transient(f"connection error ({type(exc).__name__})") from None
        status = self._refusal(response, "GET", path, stats)
        if status >= 500:
            raise Transient(f"HTTP {status}")
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise Transient("malformed JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("value", []), list):
            raise Transient("unexpected response shape")
        return body

    def _refusal(self, response: httpx.Response, method: str, path: str, stats: CallStats) -> int:
        """Raise for a refused key, a rate limit (transient) or a refused request; else the status."""
        status = response.status_code
        if status in (401, 403):
            raise PloomesAuthError(
                f"Ploomes refused the key in ${self.user_key_env} (HTTP {status} on {method} {path}). "
                f"Set ${self.user_key_env} to the User-Key of an active integration user of this account."
            )
        if status == 429:
            stats.rate_limited += 1
            retry_after = _retry_after(response.headers.get("Retry-After"))
            if retry_after is not None:
                self.pacer.hold(retry_after)
            raise Transient("HTTP 429", retry_after)
        if 400 <= status < 500:
            raise PloomesRequestError(
                f"Ploomes answered HTTP {status} to {method} {path} ({_error_text(response)}); "
                "this is not retried because the request itself was refused.",
                status,
            )
        return status

    def write(
        self, method: str, path: str, body: dict[str, Any] | None = None, stats: CallStats | None = None
    ) -> dict[str, Any]:
        """One POST, PATCH or DELETE. Retried only when the request surely did not take effect (a
        429, a refused connection): a write that timed out or got a 5xx may have landed, so it is
        reported instead of repeated, and the caller's whole operation is safe to run again."""
        stats = stats if stats is not None else CallStats()

        def once() -> dict[str, Any]:
            self.pacer.wait()
            stats.requests += 1
            try:
                response = self._http.request(method, path, json=body)
            except httpx.ConnectError as exc:
                raise Transient(f"connection error ({type(exc).__name__})") from None
            except httpx.TransportError as exc:
                raise PloomesUnavailableError(
                    f"Ploomes {method} {path} got no answer ({type(exc).__name__}); it may or may not "
                    "have taken effect: run the command again, it only does what is still missing."
                ) from None
            if self._refusal(response, method, path, stats) >= 500:
                raise PloomesUnavailableError(
                    f"Ploomes answered HTTP {response.status_code} to {method} {path} "
                    f"({_error_text(response)}); run the command again, it only does what is still missing."
                )
            try:
                answer = response.json() if response.content else {}
            except ValueError:
                answer = {}
            return answer if isinstance(answer, dict) else {}

        try:
            return self.retry.run(once, stats, f"Ploomes {method} {path}", self.log)
        except Transient as exc:
            raise PloomesUnavailableError(
                f"Ploomes {method} {path} kept failing after {self.max_attempts} attempts (last: {exc.reason}). "
                f"Check {self.base_url} is reachable and run the command again."
            ) from None

    # ---- paging --------------------------------------------------------------------------------
    def iter_window(
        self,
        spec: EntitySpec,
        start: dt.datetime | None,
        end: dt.datetime,
        stats: CallStats,
        extra_expand: tuple[str, ...] = (),
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield pages of the records whose change date is in [start, end); with no start, every
        record changed before `end` (the history window)."""
        window = f"{spec.date_field} lt {format_literal(end, self.datetime_literal)}"
        if start is not None:
            window = f"{spec.date_field} ge {format_literal(start, self.datetime_literal)} and {window}"
        base = f"({spec.base_filter}) and {window}" if spec.base_filter else window
        expand = ",".join(dict.fromkeys((*spec.expand, *extra_expand)))
        yield from self._iter_keyset(spec.path, base, expand, stats)

    def _iter_keyset(
        self, path: str, base_filter: str, expand: str, stats: CallStats, select: str = ""
    ) -> Iterator[list[dict[str, Any]]]:
        last_id: int | None = None
        expected: int | None = None
        seen = 0
        while True:
            flt = base_filter if last_id is None else f"{base_filter} and Id gt {last_id}"
            params = {"$filter": flt, "$orderby": "Id", "$top": str(self.page_size)}
            if expand:
                params["$expand"] = expand
            if select:
                params["$select"] = select
            if last_id is None:
                params["$count"] = "true"
            body = self.get(path, params, stats)
            if last_id is None and isinstance(body.get("@odata.count"), int):
                expected = body["@odata.count"]
            page = body.get("value", [])
            if not page:
                return
            ids = [r.get("Id") for r in page]
            if (
                any(not isinstance(i, int) for i in ids)
                or ids != sorted(ids)
                or (last_id is not None and ids[0] <= last_id)
            ):
                raise PloomesRequestError(
                    f"Ploomes GET {path} returned a page not ordered by Id after {last_id}; keyset paging "
                    "cannot continue safely (did the server ignore $orderby?)."
                )
            stats.pages += 1
            stats.records += len(page)
            seen += len(page)
            last_id = ids[-1]
            yield page
            if len(page) < self.page_size and expected is not None and seen >= expected:
                return

    def iter_by_ids(
        self, path: str, ids: list[int], expand: tuple[str, ...], stats: CallStats, key: str = "Id"
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield pages of the records whose `key` is one of `ids`, `ids_per_request` at a time.

        (I) `key in (...)` is OData 4.01; a server that refuses it (HTTP 400) is asked with an `or`
        chain from then on, for the rest of this connection, and the switch is logged once.
        """
        wanted = sorted(set(ids))
        # by Id, a batch fits one page, so each Id is asked once; by DealId a deal may have many
        size = min(self.ids_per_request, self.page_size) if key == "Id" else self.ids_per_request
        for n in range(0, len(wanted), size):
            batch = wanted[n : n + size]
            try:
                yield from self._iter_keyset(path, self._id_filter(key, batch), ",".join(expand), stats)
            except PloomesRequestError as exc:
                if self.id_list_filter != "in" or exc.status != 400:
                    raise
                self.log.warning(f"Ploomes refused `{key} in (...)` on {path}; asking with `or` instead")
                self.id_list_filter = "or"
                yield from self._iter_keyset(path, self._id_filter(key, batch), ",".join(expand), stats)

    def _id_filter(self, key: str, ids: list[int]) -> str:
        if self.id_list_filter == "in":
            return f"{key} in ({','.join(map(str, ids))})"
        return "(" + " or ".join(f"{key} eq {i}" for i in ids) + ")"

    def iter_ids(self, path: str, stats: CallStats) -> Iterator[list[int]]:
        """Every Id the set still holds, a page at a time (`$select=Id`, keyset): deleted and
        merged-away records simply vanish from lists (ploomes-api.md §9), so this is how a
        reconcile learns what is gone."""
        for page in self._iter_keyset(path, "Id gt 0", "", stats, select="Id"):
            yield [int(r["Id"]) for r in page]

    def deleted_deals(self, since: dt.datetime, stats: CallStats) -> dict[int, str | None]:
        """Deals deleted since `since`: Id -> when (C [S2]: `GET /Deals/GetDeletedDeals?$filter=
        LastUpdateDate ge <ts>`). (I) The rows' shape is not documented: we read `Id` and take
        `LastUpdateDate` as the deletion date when present; paging is asked like every list."""
        flt = f"LastUpdateDate ge {format_literal(since, self.datetime_literal)}"
        out: dict[int, str | None] = {}
        for page in self._iter_keyset(DELETED_DEALS_PATH, flt, "", stats):
            out.update({int(r["Id"]): r.get("LastUpdateDate") for r in page})
        return out

    def iter_pages(self, path: str, stats: CallStats) -> Iterator[list[dict[str, Any]]]:
        """Every record of a set, a page at a time (keyset on Id)."""
        return self._iter_keyset(path, "Id gt 0", "", stats)

    def fields(self, stats: CallStats, expand: str = "Type") -> list[dict[str, Any]]:
        """The whole field catalogue, native and custom (`/Fields`); `expand` adds e.g. the options
        of option lists (`OptionsTable($expand=Options)`)."""
        out: list[dict[str, Any]] = []
        for page in self._iter_keyset("/Fields", "Id gt 0", expand, stats):
            out.extend(page)
        return out


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            from email.utils import parsedate_to_datetime

            when = parsedate_to_datetime(value)
            return max(0.0, (when - dt.datetime.now(when.tzinfo)).total_seconds())
        except (TypeError, ValueError):
            return None


def _error_text(response: httpx.Response) -> str:
    """The server's message (error.message / Message, ploomes-api.md §4), else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or "no body"
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
        for key in ("Message", "message"):
            if body.get(key):
                return str(body[key])[:300]
    return json.dumps(body)[:300]
