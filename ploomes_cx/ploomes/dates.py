"""Ploomes dates, read one way everywhere.

Ploomes sends ISO 8601 text, with an offset or a `Z` on most fields; a date without one is in the
account's own zone (ploomes-api.md §5, I), which the mapping names (`ploomes.naive_datetime_timezone`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo


def parse(text: str, naive_zone: ZoneInfo) -> dt.datetime:
    """Aware datetime from a Ploomes date; raises ValueError on text that is not one."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=naive_zone)


def local_parser(
    naive_zone: ZoneInfo, zone: ZoneInfo, date_only: bool = False
) -> Callable[[Any], dt.datetime | None]:
    """Ploomes date text -> naive time in `zone` (the mapping's), None for missing or broken text;
    with `date_only`, midnight of that day (a sale date)."""

    def local(text: Any) -> dt.datetime | None:
        if not isinstance(text, str) or not text:
            return None
        try:
            value = parse(text, naive_zone).astimezone(zone).replace(tzinfo=None)
        except ValueError:
            return None
        return value.replace(hour=0, minute=0, second=0, microsecond=0) if date_only else value

    return local
