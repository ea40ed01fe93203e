"""Client-side pacing shared by the Ploomes and CustomerX clients."""

from __future__ import annotations

import fcntl
import hashlib
import threading
import time
from pathlib import Path


class Pacer:
    """Spaces request starts evenly at the configured rate, across threads and processes.

    Even spacing, not a windowed counter: a limiter that allows 120 requests in the first second
    of a minute meets the server's own limiter as a burst of 429s. When `state_path` is given, the
    next free slot lives in that file under an exclusive `flock`, so every step and every run
    that uses the same account (parallel backfills included) shares one budget. Retries are
    tenacity's; this is the only hand-written flow control.
    """

    def __init__(self, requests_per_minute: float, state_path: Path | None = None) -> None:
        self.interval = 60.0 / requests_per_minute
        self.state_path = state_path
        self._next = 0.0
        self._lock = threading.Lock()
        if state_path is not None:
            state_path.parent.mkdir(parents=True, exist_ok=True)

    def _reserve(self, not_before: float, spacing: float) -> float:
        """Book the next slot at or after `not_before`; returns its start (epoch seconds)."""
        with self._lock:
            if self.state_path is None:
                start = max(not_before, self._next)
                self._next = max(self._next, start + spacing)
                return start
            with open(self.state_path, "a+") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                fh.seek(0)
                text = fh.read().strip()
                booked = float(text) if text else 0.0
                start = max(not_before, booked)
                fh.seek(0)
                fh.truncate()
                fh.write(repr(max(booked, start + spacing)))
                fh.flush()
            return start

    def wait(self) -> None:
        start = self._reserve(time.time(), self.interval)
        delay = start - time.time()
        if delay > 0:
            time.sleep(delay)

    def hold(self, seconds: float) -> None:
        """After a 429 nobody on this account should call before `seconds` have passed."""
        self._reserve(time.time() + seconds, 0.0)


def account_pacing_file(folder: Path, api: str, base_url: str, secret_env: str) -> Path:
    """One schedule file per API account (URL + name of the credential's variable).

    Named by a hash of the URL and the variable's *name*: the credential itself is never written.
    """
    tag = hashlib.sha256(f"{base_url}|{secret_env}".encode()).hexdigest()[:16]
    return folder / "pacing" / f"{api}-{tag}"
