"""The retry policy both API clients share, on tenacity: which failures are transient, how long
to wait (the server's hint when it gives one, else exponential backoff with jitter), and the
bookkeeping that ends up in the materialization metadata."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol, TypeVar

import tenacity

T = TypeVar("T")


class Transient(Exception):
    """A failure worth another attempt (429, 5xx, timeout, dropped connection, unreadable body)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class RetryStats(Protocol):
    retries: int
    reasons: dict[str, int]


class RetryPolicy:
    def __init__(self, max_attempts: int, backoff_initial_seconds: float, backoff_max_seconds: float) -> None:
        self.max_attempts = max_attempts
        # jitter as large as the first wait: 1 to 2 s by default, and a first wait set small
        # (`first_retry_seconds`) stays small rather than taking tenacity's fixed second of jitter
        self._backoff = tenacity.wait_exponential_jitter(
            initial=backoff_initial_seconds, max=backoff_max_seconds, jitter=backoff_initial_seconds
        )
        self._backoff_max = backoff_max_seconds

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, Transient) and exc.retry_after is not None:
            return min(exc.retry_after, self._backoff_max)
        return self._backoff(state)

    def run(
        self,
        attempt: Callable[[], T],
        stats: RetryStats,
        what: str,
        log: logging.Logger | logging.LoggerAdapter,
    ) -> T:
        """`attempt()` until it returns; the last `Transient` is raised once attempts run out."""

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            reason = exc.reason if isinstance(exc, Transient) else "error"
            stats.retries += 1
            stats.reasons[reason] = stats.reasons.get(reason, 0) + 1
            log.warning(f"{what}: {reason}; retry {state.attempt_number} in {state.upcoming_sleep:.2f}s")

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(Transient),
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=self._wait,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(attempt)
