"""Live progress of a CLI sync: one line per finished step, read from the run's own event log.

A sync of a big account can spend many minutes inside one window; without this the terminal is
silent until the window ends. The lines come from the same events the UI shows (materialization
metadata, retries, pool waits), so the CLI and the UI never tell different stories.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import dagster as dg

from ploomes_cx.metadata import PROGRESS, RECORDS, WAITING, Count

# materialization metadata worth a place on the progress line, in this order
PROGRESS_COUNTS = (
    (RECORDS, "extracted"),
    *((c.value, c.value) for c in Count if c is not Count.EXTRACTED),
)


def describe(record: dg.EventLogEntry, started: float) -> str | None:
    """The progress line for one event, or None for events a terminal user does not need."""
    elapsed = f"[{record.timestamp - started:6.1f}s]"
    event = record.dagster_event
    if event is None:
        # our own "waiting: ..." (an account's step lock held by another process) and
        # "progress: ..." (a load step's records done and ETA) log lines
        message = record.user_message or ""
        if message.startswith(PROGRESS):
            step = (record.step_key or "").split("__")[-1]
            return f"    {elapsed} {step}: {message.removeprefix(PROGRESS).strip()}"
        return f"    {elapsed} {record.step_key}: {message}" if message.startswith(WAITING) else None
    kind = event.event_type_value
    if kind == "ASSET_MATERIALIZATION":
        mat = event.step_materialization_data.materialization
        counts = [
            f"{int(mat.metadata[k].value)} {label}"
            for k, label in PROGRESS_COUNTS
            if k in mat.metadata and isinstance(mat.metadata[k].value, int | float)
        ]
        counts += _merges(mat.metadata)
        if not counts:
            return None
        return f"    {elapsed} {mat.asset_key.path[-1]}: {', '.join(counts)}"
    if kind == "STEP_UP_FOR_RETRY":
        return f"    {elapsed} {event.step_key}: transient failure, retrying"
    if kind == "STEP_FAILURE":
        return f"    {elapsed} {event.step_key}: failed"
    pool = event.engine_event_data.metadata.get("pool") if kind == "ENGINE_EVENT" else None
    if pool is not None and event.message:
        # another run on the same credential holds the pool's slot: say why nothing moves
        return f"    {elapsed} {event.step_key}: waiting, {event.message[0].lower()}{event.message[1:]}"
    return None


SETTLED = {
    "deleted": "deleted",
    "merged_away": "kept",
    "rejected": "refused its deletion",
    "would_delete": "would be deleted",
    "would_keep": "would be kept",
}


def _merges(metadata: Mapping[str, Any]) -> list[str]:
    """What a load did about clients merged after both were loaded (load/merges.py), when it did."""
    moved = metadata.get("moved")
    said = [f"{int(moved.value)} moved to the client theirs was merged into"] if moved and moved.value else []
    settled = metadata.get("merged_away_clients")
    for outcome, n in (settled.value if settled is not None else {}).items():
        said.append(f"{n} merged-away client{'s' if n > 1 else ''} {SETTLED.get(outcome, outcome)}")
    return said


class RunWatcher:
    """Polls one run's event log in a background thread and hands each new line to `emit`."""

    def __init__(
        self, instance: dg.DagsterInstance, run_id: str, emit: Callable[[str], None], interval: float = 0.5
    ) -> None:
        self._instance = instance
        self._run_id = run_id
        self._emit = emit
        self._interval = interval
        self._cursor: str | None = None
        self._started = time.time()
        self._stop = threading.Event()
        self._reported: set[dg.AssetKey] = set()
        self._thread = threading.Thread(target=self._loop, name=f"progress-{run_id[:8]}", daemon=True)

    def __enter__(self) -> RunWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._drain()  # whatever landed between the last poll and the end of the run

    def _first_of_range(self, record: dg.EventLogEntry) -> bool:
        """A run over several windows materializes each raw asset once per window with the same
        metadata (the run's); its line is printed once."""
        event = record.dagster_event
        if event is None or event.event_type_value != "ASSET_MATERIALIZATION":
            return True
        mat = event.step_materialization_data.materialization
        if mat.partition is None:
            return True
        seen = mat.asset_key in self._reported
        self._reported.add(mat.asset_key)
        return not seen

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._drain()

    def _drain(self) -> None:
        while True:
            try:
                page = self._instance.get_records_for_run(self._run_id, cursor=self._cursor, limit=500)
            except Exception:  # the run may not be stored yet; progress is best effort, never fatal
                return
            for entry in page.records:
                line = describe(entry.event_log_entry, self._started)
                if line and self._first_of_range(entry.event_log_entry):
                    self._emit(line)
            self._cursor = page.cursor
            if not page.has_more:
                return
