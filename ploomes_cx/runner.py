"""Run a mapping's sync job for a list of windows on the persistent Dagster instance.

Used by the CLI's `sync` and `demo`. A range of windows runs in chunks of `sync.windows_per_run`
(each window extracted, then one staging and one load for the chunk), oldest first, and the first
failed chunk stops the rest, so CustomerX never receives a newer window before an older one. One
chunk is one run; several are three runs each (extract, stage, load), the next chunk's extraction
running beside this chunk's load.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from ploomes_cx.alerts.cli import report_cli_runs
from ploomes_cx.factory import LAYER_TAG, build_integration_defs
from ploomes_cx.mapping import Mapping
from ploomes_cx.partitions import chunks
from ploomes_cx.plan import Plan
from ploomes_cx.progress import RunWatcher
from ploomes_cx.runtime.dagster_logging import skip_empty_log_config
from ploomes_cx.runtime.duckdb_keep import kept_between_steps
from ploomes_cx.runtime.housekeeping import HOST_TAG, PID_TAG, reclaim_abandoned_runs
from ploomes_cx.runtime.pacing import exclusive
from ploomes_cx.runtime.signals import sigterm_kept
from ploomes_cx.runtime.state import ensure_dagster_home, ensure_home
from ploomes_cx.summary import WindowSummary, combine, summarize

SYNC_TAG = "ploomes_cx/sync_id"
WINDOWS_TAG = "ploomes_cx/windows"  # the windows a run is for, also on its unpartitioned staging and load


class MissingEnvironment(Exception):
    pass


class InstanceError(Exception):
    """The Dagster instance (DAGSTER_HOME and its dagster.yaml) cannot be opened or queried."""


def required_env(m: Mapping) -> list[str]:
    return [m.ploomes.base_url_env, m.ploomes.user_key_env, m.customerx.base_url_env, m.customerx.token_env]


def check_env(m: Mapping, customerx: bool = True) -> None:
    names = required_env(m) if customerx else required_env(m)[:2]
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        raise MissingEnvironment(
            f"{m.source_path}: environment variable(s) {', '.join('$' + n for n in missing)} not set; "
            "they hold the Ploomes and CustomerX base URLs and credentials (names come from the mapping's "
            "ploomes: and customerx: keys)"
        )


def run_config(m: Mapping, dry_run: bool, sync_id: str = "", loads: bool = True) -> dict[str, Any]:
    """Quiet console logs (the CLI prints its own summary), the load assets' dry-run flag, and the
    id shared by every window of one `sync` command (a refused record is sent once per sync);
    `loads` False for a run without the load steps, whose config Dagster would refuse."""
    plan = Plan.of(m)
    config = {"dry_run": dry_run, "sync_id": sync_id}
    ops = {plan.load_op(e): {"config": config} for e in plan.staged} if loads else {}
    return {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}, "ops": ops}


def run_windows(
    m: Mapping,
    keys: list[str],
    on_window: Callable[[WindowSummary], None] | None = None,
    tags: dict[str, str] | None = None,
    dry_run: bool = False,
    on_progress: Callable[[str], None] | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> list[WindowSummary]:
    """Run the windows under the mapping's sync lock: two syncs of one mapping never overlap
    (in-process runs bypass the run queue's per-mapping limit, so the CLI takes turns itself)."""
    lock = ensure_home() / "locks" / f"sync-{m.name}.lock"
    message = f"another ploomes-cx sync of mapping {m.name} is running; waiting for it to finish ({lock})"
    with exclusive(lock, (lambda: on_wait(message)) if on_wait else None):
        return _run_windows(m, keys, on_window, tags, dry_run, on_progress)


def _run_windows(
    m: Mapping,
    keys: list[str],
    on_window: Callable[[WindowSummary], None] | None,
    tags: dict[str, str] | None,
    dry_run: bool,
    on_progress: Callable[[str], None] | None,
) -> list[WindowSummary]:
    ensure_dagster_home()
    instance = open_instance()
    owner = {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}
    runs = _Runs(m, instance, str(uuid.uuid4()), {**owner, **(tags or {})}, dry_run, on_progress)
    report = on_window or (lambda _: None)
    try:
        chunked = chunks(m, keys)
        if len(chunked) == 1:
            windows = [runs.run(chunked[0], LAYERS)]
            report(windows[0])
        else:
            skip_empty_log_config()  # two runs at once: see runtime/dagster_logging.py
            windows = _pipelined(runs, chunked, report)
        report_cli_runs(m, runs.run_ids, instance)  # alerts without waiting for a daemon
        return windows
    finally:
        instance.dispose()


LAYERS = ("raw", "staging", "load")


class _Runs:
    """Starts the runs of one `sync` command: one instance, one sync id, the same tags and
    progress lines; a run covers a chunk of windows and some (or all) of the job's layers."""

    def __init__(
        self,
        m: Mapping,
        instance: dg.DagsterInstance,
        sync_id: str,
        tags: dict[str, str],
        dry_run: bool,
        on_progress: Callable[[str], None] | None,
    ) -> None:
        self.m, self.instance, self.sync_id, self.tags = m, instance, sync_id, tags
        # two runs at once (and their progress watchers) print from their own threads
        self.dry_run, self.on_progress = dry_run, one_at_a_time(on_progress) if on_progress else None
        self.plan = Plan.of(m)
        self.run_ids: list[str] = []  # every run started, for the alerts once they all ended
        defs = build_integration_defs(m)
        self.job = defs.resolve_job_def(self.plan.job)
        self.layers: dict[str, list[dg.AssetKey]] = {}
        for spec in defs.resolve_all_asset_specs():
            if spec.key != self.plan.reconcile_key:
                self.layers.setdefault(spec.tags[LAYER_TAG], []).append(spec.key)

    def run(self, chunk: list[str], layers: tuple[str, ...]) -> WindowSummary:
        started = time.monotonic()
        run_id = str(uuid.uuid4())
        self.run_ids.append(run_id)
        key = label(chunk)
        whole = layers == LAYERS
        if self.on_progress:
            doing = (
                "running"
                if whole
                else {"raw": "extracting", "staging": "staging", "load": "loading"}[layers[0]]
            )
            self.on_progress(f"  window {key}: {doing} (run {run_id})")
        partitioned = "raw" in layers
        watcher = (
            RunWatcher(self.instance, run_id, self.on_progress)
            if self.on_progress
            else contextlib.nullcontext()
        )
        with watcher, sigterm_kept(), kept_between_steps():
            result = self.job.execute_in_process(
                partition_key=chunk[0] if partitioned and len(chunk) == 1 else None,
                asset_selection=None if whole else [k for layer in layers for k in self.layers[layer]],
                instance=self.instance,
                raise_on_error=False,
                run_id=run_id,
                tags={
                    "ploomes_cx/trigger": "cli",
                    SYNC_TAG: self.sync_id,
                    WINDOWS_TAG: key,
                    # the daemon's run retries are for launched runs; the CLI reports and stops
                    "dagster/max_retries": "0",
                    **(_range_tags(chunk) if partitioned else {}),
                    **self.tags,
                },
                run_config=run_config(self.m, self.dry_run, self.sync_id, loads="load" in layers),
            )
        return summarize(self.plan, key, result, time.monotonic() - started, windows=len(chunk))


def _pipelined(
    runs: _Runs, chunked: list[list[str]], report: Callable[[WindowSummary], None]
) -> list[WindowSummary]:
    """Chunks one after another, with the next chunk's extraction running while this one loads:
    Ploomes and CustomerX are different APIs with their own limits, so neither waits for the other
    (issue 14, part 3). Staging sits between them: chunk k is staged before chunk k+1's rows are
    extracted (so it sees no later window) and chunk k+1 is staged only after chunk k has loaded
    (staging reads the crosswalk the load writes). A chunk that fails stops the rest, as before;
    an extraction already under way finishes first, and its rows are simply re-read next time."""
    results: list[WindowSummary] = []
    extracted = runs.run(chunked[0], ("raw",))
    for i, chunk in enumerate(chunked):
        started = time.monotonic()
        parts = [extracted]
        if extracted.success:
            parts.append(runs.run(chunk, ("staging",)))
        ahead = None
        if parts[-1].success:
            if i + 1 < len(chunked):
                ahead = _Background(runs.run, chunked[i + 1], ("raw",))
            parts.append(runs.run(chunk, ("load",)))
        window = combine(label(chunk), parts, extracted.seconds + time.monotonic() - started)
        results.append(window)
        report(window)
        if ahead is not None:
            extracted = ahead.result()
        if not window.success:
            break
    return results


class _Background:
    """A function run on a daemon thread: Ctrl-C in the main thread is not held up by it (the run
    it leaves behind is marked failed by the next sync's housekeeping)."""

    def __init__(self, fn: Callable[..., WindowSummary], *args: Any) -> None:
        self._out: list[WindowSummary] = []
        self._error: list[BaseException] = []
        self._thread = threading.Thread(target=self._main, args=(fn, *args), name="next-chunk", daemon=True)
        self._thread.start()

    def _main(self, fn: Callable[..., WindowSummary], *args: Any) -> None:
        try:
            self._out.append(fn(*args))
        except BaseException as exc:  # handed to the caller in result()
            self._error.append(exc)

    def result(self) -> WindowSummary:
        self._thread.join()
        if self._error:
            raise self._error[0]
        return self._out[0]


def one_at_a_time(emit: Callable[[str], None]) -> Callable[[str], None]:
    """`emit` called by one thread at a time: `print` writes a line and its newline separately,
    so two threads printing at once can run their lines together."""
    lock = threading.Lock()

    def locked(line: str) -> None:
        with lock:
            emit(line)

    return locked


def label(chunk: list[str]) -> str:
    return chunk[0] if len(chunk) == 1 else f"{chunk[0]}..{chunk[-1]}"


def _range_tags(chunk: list[str]) -> dict[str, str]:
    """A run over several windows: Dagster's partition range tags (one run, every window's raw rows)."""
    if len(chunk) == 1:
        return {}
    return {
        "dagster/asset_partition_range_start": chunk[0],
        "dagster/asset_partition_range_end": chunk[-1],
    }


def open_instance() -> dg.DagsterInstance:
    """The instance under DAGSTER_HOME, checked by one query, with abandoned CLI runs cleaned up.

    A bad dagster.yaml, an unreachable PostgreSQL or a missing driver would otherwise surface as
    a traceback from deep inside SQLAlchemy in the middle of the first run.
    """
    home = os.environ.get("DAGSTER_HOME", "")
    try:
        instance = dg.DagsterInstance.get()
    except Exception as exc:
        raise InstanceError(
            f"the Dagster instance in DAGSTER_HOME={home} cannot be loaded: {_headline(exc)}"
        ) from None
    try:
        reclaim_abandoned_runs(instance)
    except Exception as exc:
        instance.dispose()
        raise InstanceError(
            f"the Dagster instance in DAGSTER_HOME={home} cannot be reached (check its dagster.yaml "
            f"storage settings and that the database is up): {_headline(exc)}"
        ) from None
    return instance


def _headline(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


@dataclass
class ReconcileOutcome:
    success: bool
    report: str  # the lines the asset wrote for the CLI
    failed: int  # records CustomerX refused or that failed after retries
    errors: list[str] = field(default_factory=list)
    error_kinds: set[str] = field(default_factory=set)


def run_reconcile(m: Mapping, dry_run: bool) -> ReconcileOutcome:
    """The mapping's reconcile job, in this process, on the persistent instance (so it shows in
    the UI), under the mapping's sync lock: a reconcile and a sync never write at the same time."""
    from ploomes_cx.reconcile.assets import FAILED, REPORT

    lock = ensure_home() / "locks" / f"sync-{m.name}.lock"
    with exclusive(lock):
        ensure_dagster_home()
        instance = open_instance()
        plan = Plan.of(m)
        op = "__".join(plan.reconcile_key.path)
        try:
            with sigterm_kept(), kept_between_steps():
                result = (
                    build_integration_defs(m)
                    .resolve_job_def(plan.reconcile_job)
                    .execute_in_process(
                        instance=instance,
                        raise_on_error=False,
                        tags={"ploomes_cx/trigger": "cli", "ploomes_cx/dry_run": str(dry_run).lower()},
                        run_config={
                            "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
                            "ops": {op: {"config": {"dry_run": dry_run}}},
                        },
                    )
                )
            report_cli_runs(m, [result.run_id], instance)  # alerts without waiting for a daemon
        finally:
            instance.dispose()
    window = summarize(plan, "reconcile", result, 0.0)
    outcome = ReconcileOutcome(result.success, "", 0, window.errors, window.error_kinds)
    for event in result.get_asset_materialization_events():
        meta = event.step_materialization_data.materialization.metadata
        outcome.report, outcome.failed = str(meta[REPORT].value), int(meta[FAILED].value)
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.user_failure_data is not None:
            meta = event.step_failure_data.user_failure_data.metadata or {}
            outcome.report = str(meta[REPORT].value) if REPORT in meta else outcome.report
    return outcome
