"""The HTTP side of `listen` (§4.3): a small Starlette app served by uvicorn, both already in the
dependency tree through dagster-webserver.

`POST /ploomes/webhook`: the validation key is checked first and compared in constant time (401
without the right one, and nothing is stored): from the header before the body is read; from the
body by a byte scan before it is parsed (`payload.py`), since parsing a keyless 2 MiB body would
cost the event loop hundreds of milliseconds. The body is read up to `MAX_BODY` (413 above), parsed
with limits (400 and one log line for anything that cannot be a callback), committed to the event
store (`events.py`), and only then is 200 answered. Processing happens elsewhere, so the answer
never waits for Ploomes or CustomerX. `GET /health`: 200 while events can be stored, with the
queue's counts; 503 when they cannot. Timeouts and the connection cap are the server's
(`server.py`).
"""

from __future__ import annotations

import hmac
import logging
import sqlite3
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ploomes_cx.live.events import BadEvent, EventStore
from ploomes_cx.live.payload import decode, key_in_body

MAX_BODY = 2 * 2**20  # a deal with every custom field is tens of kilobytes
KEY_HEADER = "x-ploomes-validation-key"
log = logging.getLogger("ploomes_cx.live")


class _TooLarge(Exception):
    pass


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise _TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def authorized(header: str | None, body: Any, key: str, echo: str) -> bool:
    """Whether the call carries `key`, where `webhooks.key_echo` says to look (I: unconfirmed)."""
    expected = key.encode()
    if echo in ("any", "header") and header is not None and hmac.compare_digest(header.encode(), expected):
        return True
    sent = body.get("ValidationKey") if isinstance(body, dict) else None
    return echo in ("any", "body") and isinstance(sent, str) and hmac.compare_digest(sent.encode(), expected)


class _Unauthorized(Exception):
    pass


class _Webhook:
    """`POST /ploomes/webhook`, the key checked before anything costs: the header's without
    reading the body, the body's by a byte scan before any parse (`payload.key_in_body`)."""

    def __init__(self, store: EventStore, key: str, echo: str, on_stored: Callable[[], None]) -> None:
        self.store, self.key, self.echo, self.on_stored = store, key, echo, on_stored

    async def handle(self, request: Request) -> Response:
        client = request.client.host if request.client else "?"
        header = request.headers.get(KEY_HEADER)
        by_header = (
            self.echo != "body" and header is not None and authorized(header, None, self.key, "header")
        )
        if not by_header and self.echo == "header":  # nothing read, nothing parsed
            return _refused(client)
        try:
            raw = await _body(request)
        except _TooLarge:
            return JSONResponse({"error": f"body above {MAX_BODY} bytes"}, status_code=413)
        except ClientDisconnect:  # gone, or closed by the body timeout: nobody to answer
            return Response(status_code=400)
        if not by_header and not key_in_body(raw, self.key):  # refused unparsed
            return _refused(client)
        try:
            seq, new = await run_in_threadpool(self._store, raw, by_header)
        except _Unauthorized:
            return _refused(client)
        except BadEvent as exc:
            log.warning(f"refused a webhook call from {client}: {exc}")
            return JSONResponse({"error": str(exc)}, status_code=400)
        except sqlite3.Error as exc:  # not stored: Ploomes must call again
            log.error(f"could not store a webhook event ({exc}); answered 503")
            return JSONResponse({"error": "the event could not be stored; call again"}, status_code=503)
        if new:
            self.on_stored()
        return JSONResponse({"stored": seq, "duplicate": not new})

    def _store(self, raw: bytes, by_header: bool) -> tuple[int, bool]:
        """Parse with limits, require the key at the top level when the header did not carry it,
        store. On a worker thread: a large trusted body does not hold the event loop."""
        body = decode(raw)
        if not by_header and not authorized(None, body, self.key, self.echo):
            raise _Unauthorized
        return self.store.add(body)


def _refused(client: str) -> JSONResponse:
    log.warning(f"refused a webhook call from {client}: no valid key")
    return JSONResponse({"error": "missing or wrong validation key"}, status_code=401)


def build_app(
    store: EventStore,
    key: str,
    echo: str = "any",
    on_stored: Callable[[], None] = lambda: None,
    status: Callable[[], dict[str, Any]] = dict,
) -> Starlette:
    if not key:
        raise ValueError("the validation key is empty: every call would be refused")
    webhook = _Webhook(store, key, echo, on_stored)

    async def health(request: Request) -> JSONResponse:
        try:
            queue = await run_in_threadpool(store.health)
        except sqlite3.Error as exc:
            return JSONResponse({"status": "error", "error": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok", **queue, **status()})

    return Starlette(
        routes=[
            Route("/ploomes/webhook", webhook.handle, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )
