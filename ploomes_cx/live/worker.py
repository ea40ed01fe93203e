"""What `listen` does with stored events when no daemon does it: claim a small batch, run the
`<name>_live` job on the persistent instance (so the run shows in the UI), then mark the events
done, or due again after a backoff when the run failed. Nothing is ever dropped.

A batch waits `debounce` seconds after the first event, so a burst (a deal won fires update and
win) becomes one run. Runs take the mapping's sync lock, like `sync` and `reconcile`: the live
job and a window never write at the same time.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg

from ploomes_cx.alerts.cli import report_cli_runs
from ploomes_cx.factory import build_integration_defs
from ploomes_cx.live.assets import EVENTS_TAG, events_label, live_run_config
from ploomes_cx.live.events import Event, EventStore
from ploomes_cx.mapping import Mapping
from ploomes_cx.plan import Plan
from ploomes_cx.runtime.duckdb_keep import kept_between_steps
from ploomes_cx.runtime.housekeeping import HOST_TAG, PID_TAG
from ploomes_cx.runtime.pacing import exclusive
from ploomes_cx.runtime.signals import sigterm_kept
from ploomes_cx.runtime.state import ensure_home
from ploomes_cx.summary import WindowSummary, summarize

log = logging.getLogger("ploomes_cx.live")
LISTEN_OWNER = "listen:"  # claims made by `listen` (one per mapping at a time: its lock says so)


@dataclass(frozen=True)
class Batch:
    events: list[Event]
    outcome: WindowSummary
    received_to_done: list[float]  # seconds from each event's receipt to the end of its run


class LiveWorker:
    """The processing loop, on its own thread; `wake()` after storing an event starts it at once."""

    def __init__(
        self,
        m: Mapping,
        store: EventStore,
        instance: dg.DagsterInstance,
        batch: int = 50,
        debounce: float = 0.25,
        poll: float = 1.0,
        on_batch: Callable[[Batch], None] | None = None,
    ) -> None:
        self.m, self.store, self.instance = m, store, instance
        self.batch, self.debounce, self.poll = batch, debounce, poll
        self.on_batch = on_batch or (lambda _: None)
        self.owner = f"{LISTEN_OWNER}{socket.gethostname()}:{os.getpid()}"
        self.sync_id = f"live-{uuid.uuid4()}"
        self.job = build_integration_defs(m).resolve_job_def(Plan.of(m).live_job)
        self.lock = ensure_home() / "locks" / f"sync-{m.name}.lock"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"live-{m.name}", daemon=True)

    def start(self) -> LiveWorker:
        # one `listen` per mapping (its lock): claims of an earlier one that died are ours to redo
        released = self.store.release(LISTEN_OWNER)
        if released:
            log.warning(f"{released} event(s) claimed by a listen that stopped mid-run are due again")
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 600.0) -> None:
        """Let the run under way finish (its events are then marked), take no new batch."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll)
            if self._stop.is_set():
                return
            if self._wake.is_set():
                self._wake.clear()
                time.sleep(self.debounce)
            try:
                while not self._stop.is_set() and self.process_once():
                    pass
            except Exception:  # the loop must outlive any one batch; its events are due again later
                log.exception("live processing failed; the batch's events are retried with backoff")

    def process_once(self) -> bool:
        """One batch, if any is due; whether there was one."""
        events = self.store.claim(self.owner, self.batch)
        if not events:
            return False
        seqs = [e.seq for e in events]
        run_id = str(uuid.uuid4())
        started = time.monotonic()
        try:
            with exclusive(self.lock), sigterm_kept(), kept_between_steps():
                result = self.job.execute_in_process(
                    instance=self.instance,
                    raise_on_error=False,
                    run_id=run_id,
                    tags={
                        "ploomes_cx/trigger": "listen",
                        EVENTS_TAG: events_label(events),
                        "dagster/max_retries": "0",
                        PID_TAG: str(os.getpid()),
                        HOST_TAG: socket.gethostname(),
                    },
                    run_config=live_run_config(self.m, seqs, self.sync_id),
                )
        except Exception as exc:  # the run could not even start (the instance, a bug): retried later
            self.store.failed(seqs, run_id, f"{type(exc).__name__}: {exc}")
            raise
        outcome = summarize(
            Plan.of(self.m), f"events {events_label(events)}", result, time.monotonic() - started
        )
        if outcome.success:
            self.store.done(seqs, run_id)
        else:
            self.store.failed(seqs, run_id, "; ".join(outcome.errors) or "the live run failed")
        now = time.time()
        self.on_batch(
            Batch(
                events, outcome, [now - dt.datetime.fromisoformat(e.received_at).timestamp() for e in events]
            )
        )
        report_cli_runs(self.m, [run_id], self.instance)  # alerts without waiting for a daemon
        return True
