"""A warehouse kept open for a moment after a step's connection closes.

Opening a DuckDB database costs about 20 ms (DuckDB builds its catalog of built-in functions for
each database it opens) plus a checkpoint when the last connection closes, and a run's steps, IO
manager and checks open about ten connections one after another: most of a small run's DuckDB time,
and about a fifth of the test suite's CPU. DuckDB shares an open database between the connections
of a process, so a connection kept open between them makes each of those opens cost a fraction of
a millisecond.

Kept only inside `kept_between_steps` (a CLI sync's, reconcile's or live batch's run, under the
mapping's sync lock, and closed when it ends) and only `LINGER_SECONDS` after the last connection
of the process opened: other processes still get the file between steps as before (their
connections retry for longer than that), and a step calling an API for minutes does not hold it
meanwhile. A connection this process opens with other settings (read-only: `review`, the alerts)
must `release` it first, or DuckDB refuses it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from collections.abc import Iterator

import duckdb

LINGER_SECONDS = 0.5
# what dagster-duckdb's resource and IO manager pass to `duckdb.connect` (DuckDB >= 1.0): a
# connection to a database already open in the process must ask for the same configuration
DAGSTER_CONNECT_CONFIG = {"custom_user_agent": "dagster"}

_lock = threading.Lock()
_kept: dict[str, tuple[duckdb.DuckDBPyConnection, float]] = {}  # database -> (connection, until)
_state = {"pid": os.getpid(), "closer": False, "scopes": 0}


def keep_open(database: str) -> None:
    """Keep `database` open until `LINGER_SECONDS` from now; call while a connection to it is
    open, so this one joins the open database instead of opening the file."""
    database = os.path.abspath(database)
    with _lock:
        _forget_inherited()
        if _state["scopes"] <= 0:
            return
        until = time.monotonic() + LINGER_SECONDS
        held = _kept.get(database)
        if held is None:
            try:
                held = (duckdb.connect(database, read_only=False, config=dict(DAGSTER_CONNECT_CONFIG)), until)
            except duckdb.Error:
                return  # opened with other settings meanwhile: nothing kept, nothing lost
        _kept[database] = (held[0], until)
        if not _state["closer"]:
            _state["closer"] = True
            threading.Thread(target=_close_when_idle, name="duckdb-keep", daemon=True).start()


def release(database: str | os.PathLike[str]) -> None:
    """Close the kept connection to `database` now, if any."""
    with _lock:
        held = _kept.pop(os.path.abspath(database), None)
    if held is not None:
        held[0].close()


def release_all() -> None:
    """Close every kept connection now: a command's runs are over, and whoever opens the file next
    (another process, or this one with other settings) must not find it kept."""
    with _lock:
        _forget_inherited()
        held = list(_kept.values())
        _kept.clear()
    for con, _ in held:
        con.close()


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
            last = _state["scopes"] == 0
        if last:
            release_all()


def _close_when_idle() -> None:
    while True:
        with _lock:
            now = time.monotonic()
            due = [db for db, (_, until) in _kept.items() if until <= now]
            closing = [_kept.pop(db)[0] for db in due]
            if not _kept and not closing:
                _state["closer"] = False
                return
            wait = min((until for _, until in _kept.values()), default=now) - now
        for con in closing:
            con.close()
        time.sleep(max(wait, 0.05))


def _forget_inherited() -> None:
    """A forked child drops, without closing, what its parent kept: DuckDB must not cross a fork."""
    if _state["pid"] != os.getpid():
        _kept.clear()
        _state.update(pid=os.getpid(), closer=False, scopes=0)


atexit.register(release_all)
