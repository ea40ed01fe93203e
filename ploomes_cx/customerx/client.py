"""HTTP client for the CustomerX REST API: auth, pacing, retries, paging. No frames here.

Pacing defaults to the account's 60 requests/min (customerx-api.md §5) and is shared through a
file like the Ploomes client's. 429, 5xx, timeouts, dropped connections and unreadable bodies
are retried with backoff, honouring `Retry-After`, else `X-RateLimit-Reset` (read as an epoch
second when above 10^9, else as seconds to wait: the spec saw both). 401/403 end the run naming
the token variable; any other 4xx is the record's problem (`CustomerXRejected`, with status and
body), never retried.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ploomes_cx.customerx.endpoints import DEFAULT_ENDPOINTS, Endpoint
from ploomes_cx.runtime.pacing import Pacer
from ploomes_cx.runtime.retry import RetryPolicy, Transient
from ploomes_cx.runtime.tls import tls_context

log = logging.getLogger(__name__)


class CustomerXError(Exception):
    """An error a person can act on; messages never contain the token."""


class CustomerXAuthError(CustomerXError):
    pass


class CustomerXUnavailableError(CustomerXError):
    pass


class CustomerXInDoubt(CustomerXUnavailableError):
    """A write whose answer was lost (timeout, 5xx, broken body): it may have landed, so it is not
    sent again blindly. Raised only for calls made with `resend=False`: creates, which the caller
    looks for first (by our external id, load/loop.py; timeline entries by their content,
    load/timeline.py), since a second POST may make a second record (customerx-api.md §7, §8.4)."""


class _MaybeLanded(Transient):
    """A failure after the request reached CustomerX: retrying a create could make it twice."""


class CustomerXRejected(CustomerXError):
    """CustomerX refused this call (a 4xx other than 401/403/429): the record's problem."""

    def __init__(self, status: int, body: str, operation: str, external_id: str | None) -> None:
        super().__init__(
            f"CustomerX refused {operation} for {external_id or '-'} (HTTP {status}): {body[:300]}"
        )
        self.status = status
        self.body = body
        self.operation = operation
        self.external_id = external_id


@dataclass
class CallStats:
    requests: int = 0
    retries: int = 0
    writes: int = 0
    rate_limited: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def wait_hint(headers: httpx.Headers, now: float | None = None) -> float | None:
    """Seconds to wait before the next call, from `Retry-After` or `X-RateLimit-Reset`."""
    retry_after = headers.get("Retry-After")
    if retry_after:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            pass
    reset = headers.get("X-RateLimit-Reset")
    if reset:
        try:
            value = float(reset)
        except ValueError:
            return None
        if value > 1e9:  # an epoch second
            return max(0.0, value - (now if now is not None else time.time()))
        return max(0.0, value)
    return None


class CustomerXApi:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        token_env: str = "CUSTOMERX_TOKEN",
        auth_scheme: str = "raw",
        requests_per_minute: float = 60,
        timeout_seconds: float = 60.0,
        max_attempts: int = 6,
        backoff_initial_seconds: float = 1.0,
        backoff_max_seconds: float = 60.0,
        endpoints: dict[str, Endpoint] | None = None,
        pacing_file: Path | None = None,
        logger: logging.Logger | logging.LoggerAdapter | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token_env = token_env
        self.max_attempts = max_attempts
        self.endpoints = endpoints or DEFAULT_ENDPOINTS
        self.pacer = Pacer(requests_per_minute, pacing_file)
        self.log = logger or log
        self.retry = RetryPolicy(max_attempts, backoff_initial_seconds, backoff_max_seconds)
        authorization = f"Bearer {token}" if auth_scheme == "bearer" else token
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={
                "Authorization": authorization,
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
            timeout=httpx.Timeout(timeout_seconds, connect=min(10.0, timeout_seconds)),
            verify=tls_context(),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CustomerXApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- one operation, retried ----------------------------------------------------------------
    def call(
        self,
        operation: str,
        *,
        external_id: str | None = None,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        stats: CallStats | None = None,
        resend: bool = True,
    ) -> tuple[Any, httpx.Headers]:
        """One operation, retried while it fails transiently. `resend=False`: a failure after the
        request reached CustomerX is not retried but raised as `CustomerXInDoubt`, for a caller
        that must look before it sends again (a 429 or a refused connection is still retried:
        nothing was written)."""
        stats = stats if stats is not None else CallStats()
        endpoint = self.endpoints[operation]
        path, id_params = endpoint.url(external_id)
        query = {**(params or {}), **id_params}

        def attempt() -> tuple[Any, httpx.Headers]:
            try:
                return self._once(endpoint, path, query, body, operation, external_id, stats)
            except _MaybeLanded as exc:
                if resend:
                    raise
                raise CustomerXInDoubt(
                    f"CustomerX {endpoint.method} {path}: {exc.reason}; it may have been written"
                ) from None

        try:
            return self.retry.run(attempt, stats, f"CustomerX {endpoint.method} {path}", self.log)
        except Transient as exc:
            raise CustomerXUnavailableError(
                f"CustomerX {endpoint.method} {path} kept failing after {self.max_attempts} attempts "
                f"(last: {exc.reason}); the record stays pending and is retried on the next sync."
            ) from None

    def _once(
        self,
        endpoint: Endpoint,
        path: str,
        query: dict[str, str],
        body: dict[str, Any] | None,
        operation: str,
        external_id: str | None,
        stats: CallStats,
    ) -> tuple[Any, httpx.Headers]:
        self.pacer.wait()
        stats.requests += 1
        if endpoint.method != "GET":
            stats.writes += 1
        try:
            response = self._http.request(
                endpoint.method,
                path,
                params=query or None,
                content=None if body is None else json.dumps(body, ensure_ascii=False),
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # never reached the server
            raise Transient(f"connection error ({type(exc).__name__})") from None
        except httpx.TimeoutException:
            raise _MaybeLanded("timeout") from None
        except httpx.TransportError as exc:
            raise _MaybeLanded(f"connection error ({type(exc).__name__})") from None
        status = response.status_code
        if status in (401, 403):
            raise CustomerXAuthError(
                f"CustomerX refused the token in ${self.token_env} (HTTP {status} on {endpoint.method} {path}). "
                f"Set ${self.token_env} to an API token of this account (Configurações → API), and check "
                "customerx.auth_scheme (raw or bearer)."
            )
        if status == 429:
            stats.rate_limited += 1
            hint = wait_hint(response.headers)
            if hint is not None:
                self.pacer.hold(hint)
            raise Transient("HTTP 429", hint)
        if status >= 500:
            raise _MaybeLanded(f"HTTP {status}")
        if status >= 400:
            raise CustomerXRejected(status, response.text, operation, external_id)
        try:
            payload = response.json() if response.content else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _MaybeLanded("malformed JSON") from None
        return payload, response.headers

    # ---- paging ---------------------------------------------------------------------------------
    def list_all(
        self,
        operation: str,
        params: dict[str, str] | None = None,
        stats: CallStats | None = None,
        per_page: int = 20,
    ) -> Iterator[dict[str, Any]]:
        """Every record of a list operation: pages until `X-Page >= X-Pages`, or a short page (§4)."""
        page = 1
        while True:
            rows, headers = self.call(
                operation,
                params={**(params or {}), "page": str(page), "per_page": str(per_page)},
                stats=stats,
            )
            rows = rows if isinstance(rows, list) else (rows or {}).get("data", [])
            yield from rows
            pages = headers.get("X-Pages")
            if pages is not None and page >= int(pages):
                return
            if pages is None and len(rows) < per_page:
                return
            if not rows:
                return
            page += 1
