"""Where a long load is: records done of the step's total and the ETA at the CustomerX pace.

A first load is bound by CustomerX's one write per request at about 60 a minute, so 20,000
contacts take hours; these lines (prefixed `metadata.PROGRESS`) are what `ploomes-cx sync` prints
meanwhile and what the UI shows in the run's log. One line at each quarter of the step and at
least every 30 s; none for steps too small to wait on, and none while the records passed since
the last line cost no request: an unchanged record is skipped in microseconds, so an unchanged
load would otherwise cross its three quarters in the same instant and say "ETA <1m" three times.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from ploomes_cx.metadata import PROGRESS

MIN_RECORDS = 100  # below this a step ends before anyone waits for it
STEP_SHARE = 0.25


def duration(minutes: float) -> str:
    if minutes < 1:
        return "<1m"
    hours, rest = divmod(round(minutes), 60)
    return f"{hours}h{rest:02d}m" if hours else f"{rest}m"


@dataclass
class LoadProgress:
    total: int
    requests_per_minute: float
    log: logging.Logger | logging.LoggerAdapter
    every_seconds: float = 30.0
    _next_share: float = STEP_SHARE
    _last: float = field(default_factory=time.monotonic)
    _said_at_requests: int | None = None  # the step's request count when it last spoke (or began)

    def tick(self, done: int, requests: int) -> None:
        """After each record: say where the step is when it crossed a quarter or 30 s went by, and
        records since the last line cost requests (else there is no wait and nothing new to say)."""
        if self._said_at_requests is None:
            self._said_at_requests = requests  # what was spent before the first record (adoption)
        if self.total < MIN_RECORDS or not 0 < done < self.total or requests == self._said_at_requests:
            return
        share, now = done / self.total, time.monotonic()
        if share < self._next_share and now - self._last < self.every_seconds:
            return
        self._said_at_requests = requests
        while self._next_share <= share:
            self._next_share += STEP_SHARE
        self._last = now
        # the requests the rest will cost, at the rate records so far cost them
        minutes = (self.total - done) * (requests / done) / self.requests_per_minute
        self.log.info(
            f"{PROGRESS} {done:,} of {self.total:,} records, ETA {duration(minutes)} "
            f"at {self.requests_per_minute:g}/min"
        )
