"""Run a mapping's sync job for a list of windows on the persistent Dagster instance.

Used by the CLI's `sync` and `demo`. A range of windows runs in chunks of `sync.windows_per_run`
(one run per chunk: each window extracted, then one staging and one load for the chunk), oldest
first, and the first failed run stops the rest, so CustomerX never receives a newer window before
an older one.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from ploomes_cx.factory import build_integration_defs
from ploomes_cx.mapping import Mapping
from ploomes_cx.partitions import chunks
from ploomes_cx.plan import Plan
from ploomes_cx.progress import RunWatcher
from ploomes_cx.runtime.housekeeping import HOST_TAG, PID_TAG, reclaim_abandoned_runs
from ploomes_cx.runtime.pacing import exclusive
from ploomes_cx.runtime.state import ensure_dagster_home, ensure_home
from ploomes_cx.summary import WindowSummary, summarize

SYNC_TAG = "ploomes_cx/sync_id"


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


def run_config(m: Mapping, dry_run: bool, sync_id: str = "") -> dict[str, Any]:
    """Quiet console logs (the CLI prints its own summary), the load assets' dry-run flag, and the
    id shared by every window of one `sync` command (a refused record is sent once per sync)."""
    plan = Plan.of(m)
    config = {"dry_run": dry_run, "sync_id": sync_id}
    ops = {plan.load_op(e): {"config": config} for e in plan.staged}
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
    sync_id = str(uuid.uuid4())
    plan = Plan.of(m)
    job = build_integration_defs(m).resolve_job_def(plan.job)
    results = []
    owner = {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}
    try:
        for chunk in chunks(m, keys):
            started = time.monotonic()
            run_id = str(uuid.uuid4())
            key = chunk[0] if len(chunk) == 1 else f"{chunk[0]}..{chunk[-1]}"
            if on_progress:
                on_progress(f"  window {key}: running (run {run_id})")
            watcher = RunWatcher(instance, run_id, on_progress) if on_progress else contextlib.nullcontext()
            with watcher:
                result = job.execute_in_process(
                    partition_key=chunk[0] if len(chunk) == 1 else None,
                    instance=instance,
                    raise_on_error=False,
                    run_id=run_id,
                    tags={
                        "ploomes_cx/trigger": "cli",
                        SYNC_TAG: sync_id,
                        # the daemon's run retries are for launched runs; the CLI reports and stops
                        "dagster/max_retries": "0",
                        **_range_tags(chunk),
                        **owner,
                        **(tags or {}),
                    },
                    run_config=run_config(m, dry_run, sync_id),
                )
            window = summarize(plan, key, result, time.monotonic() - started)
            results.append(window)
            if on_window:
                on_window(window)
            if not window.success:
                break
    finally:
        instance.dispose()
    return results


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
