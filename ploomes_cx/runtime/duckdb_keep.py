"""A warehouse kept open for a moment after a step's connection closes.

Opening a DuckDB database costs about 20 ms (DuckDB builds its catalog of built-in functions for
each database it opens) plus a checkpoint when the last connection closes, and a run's steps, IO
manager and checks open about ten connections one after another: most of a small run's DuckDB time,
and about a fifth of the test suite's CPU. DuckDB shares an open database between the connections
of a process, so a connection kept open between them makes each of those opens cost a fraction of
a millisecond.

Kept only inside `kept_between_steps` (a CLI sync's, reconcile's or live batch's run, under the
mapping's sync lock, and closed when it ends) and only `LINGER_SECONDS` after the last step
connection of the process closed: other processes still get the file between steps as before
(their connections retry for longer than that), and a step calling an API for minutes without a
connection does not hold it meanwhile. A connection this process opens with other settings
(read-only: `review`, the alerts) must `release` it first, or DuckDB refuses it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import duckdb

LINGER_SECONDS = 0.5
# what dagster-duckdb's resource and IO manager pass to `duckdb.connect` (DuckDB >= 1.0): a
# connection to a database already open in the process must ask for the same configuration
DAGSTER_CONNECT_CONFIG = {"custom_user_agent": "dagster"}


@dataclass
class _Kept:
    con: duckdb.DuckDBPyConnection
    using: int  # step connections open now: never closed under them
    until: float  # closed after this, once none is open


_lock = threading.Lock()  # held while a kept connection is opened or closed, too
_kept: dict[str, _Kept] = {}
_state = {"pid": os.getpid(), "closer": False, "scopes": 0}
_inherited: list[object] = []  # a forked child's copies of its parent's, never closed nor freed


@contextlib.contextmanager
def kept_open(database: str) -> Iterator[None]:
    """Around a step's connection to `database` (opened already): inside `kept_between_steps`,
    the database stays open until `LINGER_SECONDS` after the last such connection closed."""
    key = os.path.abspath(database)
    with _lock:
        _forget_inherited()
        kept = _kept.get(key)
        if kept is None and _state["scopes"] > 0:
            try:  # joins the database the step's connection opened
                kept = _Kept(
                    duckdb.connect(key, read_only=False, config=dict(DAGSTER_CONNECT_CONFIG)), 0, 0.0
                )
            except duckdb.Error:
                kept = None  # opened with other settings meanwhile: nothing kept, nothing lost
            else:
                _kept[key] = kept
        if kept is not None:
            kept.using += 1
    try:
        yield
    finally:
        if kept is not None:
            with _lock:
                kept.using -= 1
                kept.until = time.monotonic() + LINGER_SECONDS
                if not _state["closer"] and key in _kept:
                    _state["closer"] = True
                    threading.Thread(target=_close_when_idle, name="duckdb-keep", daemon=True).start()


@contextlib.contextmanager
def kept_between_steps() -> Iterator[None]:
    """Keep warehouses open between the steps of the runs inside the block (one run, under the
    mapping's sync lock), and close them when the last such block of the process ends, however it
    ends: the next writer to take the lock finds the file free. Outside such a block (a run
    worker, a test's or notebook's own `execute_in_process`) nothing is kept."""
    with _lock:
        _forget_inherited()
        _state["scopes"] += 1
    try:
        yield
    finally:
        with _lock:
            _state["scopes"] -= 1
            if _state["scopes"] == 0:
                _close(list(_kept))


def release(database: str | os.PathLike[str]) -> None:
    """Close the kept connection to `database` now, if any (step connections still open keep
    the database open themselves)."""
    with _lock:
        _close([os.path.abspath(database)])


def release_all() -> None:
    with _lock:
        _forget_inherited()
        _close(list(_kept))


def _close(keys: list[str]) -> None:
    """Under `_lock`, so nobody finds a database still closing after this returns."""
    for key in keys:
        kept = _kept.pop(key, None)
        if kept is not None:
            kept.con.close()


def _close_when_idle() -> None:
    while True:
        with _lock:
            now = time.monotonic()
            _close([key for key, kept in _kept.items() if kept.using == 0 and kept.until <= now])
            idle = [kept.until for kept in _kept.values() if kept.using == 0]
            if not _kept:
                _state["closer"] = False
                return
            wait = min(idle, default=now + LINGER_SECONDS) - now
        time.sleep(max(wait, 0.05))


def _forget_inherited() -> None:
    """A forked child keeps, never closing nor freeing them, the connections its parent kept: a
    close there would checkpoint the parent's file. Called under `_lock`."""
    if _state["pid"] != os.getpid():
        _inherited.extend(kept.con for kept in _kept.values())
        _kept.clear()
        _state.update(pid=os.getpid(), closer=False, scopes=0)


atexit.register(release_all)
