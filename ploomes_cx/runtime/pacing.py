"""Client-side pacing shared by the Ploomes and CustomerX clients."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from ploomes_cx.metadata import WAITING


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


@contextlib.contextmanager
def exclusive(path: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold `path`'s exclusive `flock` for the block: one holder at a time across processes.

    The API steps of one account take turns under it. Dagster's pools say the same and show it
    in the UI, but on a SQLite instance their slot claim is not atomic across processes (two
    steps starting within milliseconds can both get the one slot), and the steps share one rate
    budget anyway, so running them together would gain nothing. `on_wait` is called once if
    another holder makes us wait, so the step's log says why nothing moves.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


TURN_HELD = "held the account of"  # the debug line a step logs when it gives back the account's turn


@contextlib.contextmanager
def account_turn(
    folder: Path, api: str, base_url: str, secret_env: str, logger: logging.Logger | logging.LoggerAdapter
) -> Iterator[None]:
    """The account's step lock, logging (by the variable's name) when another step holds it, and
    once the turn is given back, when this step got it and for how long: the event log then shows
    when each step really called the API (a step's start includes its wait). One line, not one
    at each end: Dagster stores every log line as an event (about 3.5 ms of CPU each,
    `python -m benchmarks.dagster_floor`), and two per API step were 24 of a small sync's 157."""
    with exclusive(
        account_step_lock(folder, api, base_url, secret_env),
        lambda: logger.info(f"{WAITING} another step is calling the account of ${secret_env}"),
    ):
        taken, started = datetime.now(UTC), time.monotonic()
        try:
            yield
        finally:
            held = time.monotonic() - started
            logger.debug(f"{TURN_HELD} ${secret_env} for {held:.6f} s from {taken.isoformat()}")


def account_step_lock(folder: Path, api: str, base_url: str, secret_env: str) -> Path:
    """The lock file of an account's API steps, beside its pacing file."""
    pacing = account_pacing_file(folder, api, base_url, secret_env)
    return pacing.with_name(pacing.name + ".step")


def account_pacing_file(folder: Path, api: str, base_url: str, secret_env: str) -> Path:
    """One schedule file per API account (URL + name of the credential's variable).

    Named by a hash of the URL and the variable's *name*: the credential itself is never written.
    """
    tag = hashlib.sha256(f"{base_url}|{secret_env}".encode()).hexdigest()[:16]
    return folder / "pacing" / f"{api}-{tag}"
