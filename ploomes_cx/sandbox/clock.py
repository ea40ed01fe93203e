"""Sandbox time: the account's zone and Ploomes-style date text (ploomes-api.md §5)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

ACCOUNT_TZ = ZoneInfo("America/Sao_Paulo")
ENTITY_CODES = {"contacts": 1, "deals": 2, "orders": 3, "quotes": 4, "notes": 5, "tasks": 6, "attachments": 7}


def to_ms(value: dt.datetime) -> int:
    return int(value.timestamp() * 1000)


def ms_to_local_text(ms: int, with_offset: bool = True) -> str:
    """Ploomes-style date text: account-local, millisecond precision, offset optional (§5)."""
    local = dt.datetime.fromtimestamp(ms / 1000, tz=ACCOUNT_TZ)
    text = local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}"
    return text + (local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:] if with_offset else "")
