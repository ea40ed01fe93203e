"""The HTTP side of `listen` (§4.3): a small Starlette app served by uvicorn, both already in the
dependency tree through dagster-webserver.

`POST /ploomes/webhook`: the body is read up to `MAX_BODY` (413 above), the validation key is
compared in constant time (401 without the right one, and nothing is stored), the event is
committed to the event store (`events.py`), and only then is 200 answered. Processing happens
elsewhere, so the answer never waits for Ploomes or CustomerX. `GET /health`: 200 while events can
be stored, with the queue's counts; 503 when they cannot.
"""

from __future__ import annotations

import hmac
import json
import logging
import sqlite3
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ploomes_cx.live.events import BadEvent, EventStore

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


def build_app(
    store: EventStore,
    key: str,
    echo: str = "any",
    on_stored: Callable[[], None] = lambda: None,
    status: Callable[[], dict[str, Any]] = dict,
) -> Starlette:
    if not key:
        raise ValueError("the validation key is empty: every call would be refused")

    async def webhook(request: Request) -> JSONResponse:
        try:
            raw = await _body(request)
        except _TooLarge:
            return JSONResponse({"error": f"body above {MAX_BODY} bytes"}, status_code=413)
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            body = None
        if not authorized(request.headers.get(KEY_HEADER), body, key, echo):
            log.warning(
                f"refused a webhook call from {request.client.host if request.client else '?'}: no valid key"
            )
            return JSONResponse({"error": "missing or wrong validation key"}, status_code=401)
        if not isinstance(body, dict):
            return JSONResponse({"error": "the body is not a JSON object"}, status_code=400)
        try:
            seq, new = await run_in_threadpool(store.add, body)
        except BadEvent as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except sqlite3.Error as exc:  # not stored: Ploomes must call again
            log.error(f"could not store a webhook event ({exc}); answered 503")
            return JSONResponse({"error": "the event could not be stored; call again"}, status_code=503)
        if new:
            on_stored()
        return JSONResponse({"stored": seq, "duplicate": not new})

    async def health(request: Request) -> JSONResponse:
        try:
            queue = await run_in_threadpool(store.health)
        except sqlite3.Error as exc:
            return JSONResponse({"status": "error", "error": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok", **queue, **status()})

    return Starlette(
        routes=[
            Route("/ploomes/webhook", webhook, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )
