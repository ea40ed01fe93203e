"""Sync windows: one Dagster time-window partition per window of Ploomes change dates."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable

import dagster as dg

from ploomes_cx.mapping import Mapping

HOURLY_FMT = "%Y-%m-%d-%H:%M"


class WindowError(ValueError):
    """A --window argument that names no partition of the mapping."""


def partitions_def(m: Mapping) -> dg.TimeWindowPartitionsDefinition:
    return _partitions(m.sync.cadence, m.sync.start, m.sync.timezone)


@functools.cache
def _partitions(cadence: str, start: str, timezone: str) -> dg.TimeWindowPartitionsDefinition:
    """One definition per (cadence, start, zone), shared by every asset and mapping that has them:
    every process loading the code location builds it for every asset otherwise."""
    if cadence == "daily":
        return dg.DailyPartitionsDefinition(start_date=start, timezone=timezone)
    return dg.HourlyPartitionsDefinition(start_date=f"{start}-00:00", timezone=timezone)


def opens_history(m: Mapping, key: str) -> bool:
    """Whether window `key` is the history window: the first one, with `sync.history` on (§4.1), open
    at its start so it carries every record last changed before its end."""
    return m.sync.history and key == partitions_def(m).get_first_partition_key()


def window_keys(m: Mapping, spec: str, now: dt.datetime | None = None) -> list[str]:
    """`START[..END]`, inclusive, as partition keys in order.

    With hourly cadence a bare date means all 24 windows of that day.
    """
    parts = partitions_def(m)
    start_text, _, end_text = spec.partition("..")
    end_text = end_text or start_text
    if not start_text:
        raise WindowError(f"--window {spec!r}: expected START or START..END, e.g. 2026-03-01..2026-03-07")
    hourly = m.sync.cadence == "hourly"
    first = _bound(start_text, hourly, first=True, spec=spec)
    last = _bound(end_text, hourly, first=False, spec=spec)
    if last < first:
        raise WindowError(f"--window {spec!r}: END comes before START")
    existing = parts.get_partition_keys(current_time=now)
    keys = [k for k in existing if first <= k <= last]
    if not keys:
        span = f"{existing[0]} .. {existing[-1]}" if existing else "none yet"
        raise WindowError(
            f"--window {spec!r} names no complete {m.sync.cadence} window of mapping {m.name!r} "
            f"(windows so far: {span}; a window can be synced once it has ended)"
        )
    missing = {k for k in (first, last) if len(k) == len(existing[0]) and k not in existing}
    if missing:
        raise WindowError(
            f"--window {spec!r}: {', '.join(sorted(missing))} is not a complete window of {m.name!r}"
        )
    return keys


def _bound(text: str, hourly: bool, first: bool, spec: str) -> str:
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            dt.date.fromisoformat(text)
        except ValueError:
            raise WindowError(f"--window {spec!r}: {text} is not a real date") from None
        if hourly:
            return f"{text}-00:00" if first else f"{text}-23:00"
        return text
    if hourly and re.fullmatch(r"\d{4}-\d{2}-\d{2}-\d{2}:00", text):
        try:
            dt.datetime.strptime(text, HOURLY_FMT)
        except ValueError:
            raise WindowError(f"--window {spec!r}: {text} is not a real hour") from None
        return text
    form = "YYYY-MM-DD or YYYY-MM-DD-HH:00" if hourly else "YYYY-MM-DD"
    raise WindowError(
        f"--window {spec!r}: {text!r} is not a partition key; use {form}, or START..END for a range "
        "(e.g. 2026-11-01..2026-11-03)"
    )


def freshness_policy(m: Mapping) -> dg.FreshnessPolicy:
    """Late when a window's sync has not landed `freshness_grace_minutes` after its scheduled run.

    The deadline is the schedule's tick plus the grace, in the mapping's zone; by then the asset
    must have been materialized within the last window length (Dagster allows no look-back
    longer than the deadline's own interval, so an hourly deadline looks back one hour).
    """
    after = m.sync.schedule_delay_minutes + m.sync.freshness_grace_minutes
    if m.sync.cadence == "daily":
        cron, window = f"{after % 60} {(after // 60) % 24} * * *", dt.timedelta(days=1)
    else:
        cron, window = f"{after % 60} * * * *", dt.timedelta(hours=1)
    return _cron_policy(cron, window, m.sync.timezone)


@functools.cache
def _cron_policy(cron: str, window: dt.timedelta, timezone: str) -> dg.FreshnessPolicy:
    """Shared by every load asset with the same deadline: Dagster walks a year of cron ticks to
    validate each new policy (~25 ms), which made it 40% of building a mapping's definitions."""
    return dg.FreshnessPolicy.cron(deadline_cron=cron, lower_bound_delta=window, timezone=timezone)


def backfill_policy(m: Mapping) -> dg.BackfillPolicy:
    """A range of windows is extracted in runs of up to `sync.windows_per_run` windows (a UI backfill
    too), so a multi-window first sync stages and loads once per chunk, not once per window."""
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=m.sync.windows_per_run)


def chunks(m: Mapping, keys: list[str]) -> list[list[str]]:
    """Consecutive windows, `sync.windows_per_run` at a time: the runs of a `sync` command."""
    size = m.sync.windows_per_run
    return [keys[i : i + size] for i in range(0, len(keys), size)]


def window_cutter(m: Mapping) -> Callable[[dt.datetime], dt.datetime]:
    """The start of the window a change date (naive, in `sync.timezone`) belongs to, so the rows of a
    run over many windows each keep their own window; a date before the first window belongs to
    it (the history window holds everything changed before its end)."""
    first = partitions_def(m).start.replace(tzinfo=None)
    hourly = m.sync.cadence == "hourly"

    def cut(stamp: dt.datetime) -> dt.datetime:
        start = stamp.replace(minute=0, second=0, microsecond=0)
        if not hourly:
            start = start.replace(hour=0)
        return max(start, first)

    return cut
