"""What every Ploomes module shares without talking HTTP: the errors, the cost of a read, the
answer of a probe and the OData date literal. Split from `client.py` so the probes and the
decisions store can use them without importing the client (no import circle)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import httpx


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
    """Transient failures outlasted every retry. `reason` is the last one ("timeout", "HTTP 504"…):
    a probe reads a timed-out listing as a refusal of that form, any other outage fails the run."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


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


@dataclass(frozen=True)
class Answer:
    """What one probe request got: taken (a list answer), or refused with a status or a reason."""

    ok: bool
    status: int | None = None
    reason: str = ""
    body: dict[str, Any] = field(default_factory=dict)


def retry_after_seconds(value: str | None) -> float | None:
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


def error_text(response: httpx.Response) -> str:
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
