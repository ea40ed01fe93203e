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
from pathlib import Path
from typing import Any

import httpx

from ploomes_cx.ploomes import probes
from ploomes_cx.ploomes.base import Answer as Answer
from ploomes_cx.ploomes.base import CallStats as CallStats
from ploomes_cx.ploomes.base import PloomesAuthError as PloomesAuthError
from ploomes_cx.ploomes.base import PloomesError as PloomesError
from ploomes_cx.ploomes.base import PloomesRequestError as PloomesRequestError
from ploomes_cx.ploomes.base import PloomesUnavailableError as PloomesUnavailableError
from ploomes_cx.ploomes.base import error_text, format_literal, retry_after_seconds
from ploomes_cx.ploomes.entities import EntitySpec
from ploomes_cx.ploomes.forms import Forms
from ploomes_cx.runtime.pacing import Pacer
from ploomes_cx.runtime.retry import RetryPolicy, Transient
from ploomes_cx.runtime.tls import tls_context

log = logging.getLogger(__name__)
DELETED_DEALS_PATH = probes.DELETED_DEALS_PATH


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
        forms: Forms | None = None,
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
        # the query forms chosen for what the spec is unsure of (`forms.py`); in memory by default
        self.forms = forms if forms is not None else Forms()
        self.ids_per_request = ids_per_request
        self.pacer = Pacer(requests_per_minute, pacing_file)
        self.retry = RetryPolicy(max_attempts, backoff_initial_seconds, backoff_max_seconds)
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"User-Key": user_key, "Accept": "application/json"},
            timeout=httpx.Timeout(timeout_seconds, connect=min(10.0, timeout_seconds)),
            verify=tls_context(),
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
                f"Check {self.base_url} is reachable and retry the run; nothing was written for this window.",
                exc.reason,
            ) from None

    def probe(self, path: str, params: dict[str, str], timeout_refuses: bool = False) -> Answer:
        """One read-only request whose refusal is an answer, not an error (`probes.py`). Only a 400
        (a bad OData query or field, ploomes-api.md §4) is a refusal, so one 502 never stores a
        fallback for good: every transient failure is retried as on any read, and one that outlasts
        the retries raises (the run fails and is retried). With `timeout_refuses` (an unscoped
        listing, which §2 says can time out) a timeout or 504 that outlasts them is a refusal."""
        try:
            return Answer(True, 200, body=self.get(path, params))
        except PloomesRequestError as exc:
            if exc.status != 400:
                raise
            return Answer(False, exc.status, str(exc))
        except PloomesUnavailableError as exc:
            if not (timeout_refuses and probes.timed_out(exc)):
                raise
            return Answer(False, 504 if exc.reason == "HTTP 504" else None, exc.reason)

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
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            if retry_after is not None:
                self.pacer.hold(retry_after)
            raise Transient("HTTP 429", retry_after)
        if 400 <= status < 500:
            raise PloomesRequestError(
                f"Ploomes answered HTTP {status} to {method} {path} ({error_text(response)}); "
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
                    f"({error_text(response)}); run the command again, it only does what is still missing."
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
        select: str = "",
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield pages of the records whose change date is in [start, end); with no start, every
        record changed before `end` (the history window). `select` narrows the fields asked."""
        window = f"{spec.date_field} lt {format_literal(end, self.datetime_literal)}"
        if start is not None:
            window = f"{spec.date_field} ge {format_literal(start, self.datetime_literal)} and {window}"
        base = f"({spec.base_filter}) and {window}" if spec.base_filter else window
        expand = ",".join(dict.fromkeys((*spec.expand, *extra_expand)))
        yield from self._iter_keyset(spec.path, base, expand, stats, select)

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

    def iter_filter(
        self, path: str, flt: str, stats: CallStats, expand: str = "", select: str = ""
    ) -> Iterator[list[dict[str, Any]]]:
        """Every record of `path` matching `flt`, a page at a time (keyset on Id)."""
        return self._iter_keyset(path, flt, expand, stats, select)

    def iter_by_ids(
        self, path: str, ids: list[int], expand: tuple[str, ...], stats: CallStats, key: str = "Id"
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield pages of the records whose `key` is one of `ids`, in batches of the `id_list` form
        the account takes (`probes.py`: `in`, else `or`, else `eq` one per request, each paced).
        A batch refused (400) is asked again in a later form (never the refused one or an earlier
        one, so this ends); `eq` refused, or a pinned form refused, raises."""
        wanted = sorted(set(ids))
        n = 0
        while n < len(wanted):
            form = probes.decide(self, self.forms, "id_list")
            # by Id, a batch fits one page, so each Id is asked once; by DealId a deal may have many
            size = 1 if form == "eq" else self.ids_per_request
            size = min(size, self.page_size) if key == "Id" else size
            batch = wanted[n : n + size]
            try:
                pages = list(self._iter_keyset(path, id_filter(form, key, batch), ",".join(expand), stats))
            except PloomesRequestError as exc:
                if not probes.refused(exc, "id_list"):
                    raise
                if probes.reprobe(self, self.forms, "id_list", form, exc) == form:
                    raise
                continue
            yield from pages
            n += size

    def iter_ids(self, path: str, stats: CallStats) -> Iterator[list[int]]:
        """Every Id the set still holds, a page at a time (`$select=Id`, keyset): deleted and
        merged-away records simply vanish from lists (ploomes-api.md §9), so this is how a
        reconcile learns what is gone."""
        for page in self._iter_keyset(path, "Id gt 0", "", stats, select="Id"):
            yield [int(r["Id"]) for r in page]

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


def id_filter(form: str, key: str, ids: list[int]) -> str:
    """The `$filter` asking for `ids` in one `id_list` form (`eq` is given one Id at a time)."""
    if form == "in":
        return f"{key} in ({','.join(map(str, ids))})"
    if form == "or":
        return "(" + " or ".join(f"{key} eq {i}" for i in ids) + ")"
    return " or ".join(f"{key} eq {i}" for i in ids)
