"""Fault switches and a token-bucket rate limit shared by both sandbox servers.

Tests queue faults (`plan.inject("500", times=3)`); each API request consumes the fault at the
head of the queue, so a test knows exactly which requests fail and how.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass

FAULT_KINDS = ("429", "500", "drop", "malformed", "slow", "short_page")


@dataclass
class Fault:
    kind: str
    remaining: int
    retry_after: float | None = None  # for 429: seconds to put in Retry-After, None for no header
    delay: float = 0.0  # for slow: seconds before answering


class FaultPlan:
    def __init__(self) -> None:
        self._queue: deque[Fault] = deque()
        self._lock = threading.Lock()
        self.served: dict[str, int] = {}

    def inject(self, kind: str, times: int = 1, retry_after: float | None = None, delay: float = 0.0) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        with self._lock:
            self._queue.append(Fault(kind, times, retry_after, delay))

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def take(self) -> Fault | None:
        with self._lock:
            if not self._queue:
                return None
            head = self._queue[0]
            head.remaining -= 1
            if head.remaining <= 0:
                self._queue.popleft()
            self.served[head.kind] = self.served.get(head.kind, 0) + 1
            return head


class TokenBucket:
    """`rate_per_minute` sustained with a small burst, as API gateways usually enforce it."""

    def __init__(self, rate_per_minute: float, burst: int) -> None:
        self.rate = rate_per_minute / 60.0
        self.capacity = float(burst)
        self.tokens = float(burst)
        self.updated = time.monotonic()
        self._lock = threading.Lock()

    def try_take(self) -> float:
        """0.0 when a token was taken, else the seconds until one will be available."""
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return 0.0
            return (1.0 - self.tokens) / self.rate


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
