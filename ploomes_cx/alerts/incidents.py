"""A finished run's incidents, read from the Dagster instance and the mapping's ledger.

The refusal share is counted in the ledger (load/ledger.py), not from the load assets' metadata:
the ledger holds one row per record a run handled, with its outcome, whatever the entity or the
job (sync, reconcile, live), and the detail of each refusal; the metadata's counts lump some
outcomes together, keep 20 refusals at most and are absent for a load step that failed half way.
A refusal repeated from an earlier run of the same `sync` command (no call made) is not counted
again: a sync split into several runs tells each refused record once, in the run that sent it.
The ledger is opened read-only and briefly; while another process holds the DuckDB file for
writing, the counts fall back to the load assets' metadata (`rejected_by_customerx` of the
`created + updated + unchanged + failed` records) and the message says the reasons are in the ledger.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from dagster._core.events import DagsterEventType  # the event types `all_logs` filters by
from dagster._utils.error import SerializableErrorInfo

from ploomes_cx.alerts import messages
from ploomes_cx.alerts.config import Alerts
from ploomes_cx.alerts.messages import Incident, StepError
from ploomes_cx.runtime.duckdb_io import WarehouseBusy, read_only

WRAPPERS = {"DagsterExecutionStepExecutionError", "RetryRequestedFromPolicy", "RetryRequested"}
CHECK_FAILED_ERROR = "DagsterAssetCheckFailedError"  # a step failed by its blocking check: told as the check
LOCK_WAIT_SECONDS = 7.5  # what a run's reader waits for the warehouse before reporting without it
COUNT_KEYS = ("created", "updated", "unchanged", "failed")
# the ledger's detail of a record CustomerX refused in an earlier run of the same `sync` command,
# noted `rejected` again with no call (load/loop.py, `_skipped`): told by that run, not by each
REPEATED_REFUSAL = "refused earlier in this sync"


@dataclass(frozen=True)
class Watch:
    """What one mapping's sensors watch: its jobs (name -> sync|reconcile|live), its blocking checks
    ((asset, check) -> description), where its ledger is, and its alert settings."""

    mapping: str
    jobs: Mapping[str, str]
    blocking: Mapping[tuple[str, str], str]
    database: Path
    alerts: Alerts
    secret_envs: tuple[str, ...] = field(default=())


def incidents_of(watch: Watch, instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[Incident]:
    """Every incident of a finished run of one of the watched jobs; [] for any other run, and for
    a dry run, failed or not: its person watches it at the terminal (the CLI tells nothing either)."""
    kind = watch.jobs.get(run.job_name)
    if kind is None or is_dry_run(run):
        return []
    tags, found = dict(run.tags), []
    logs = instance.all_logs(
        run.run_id,
        of_type={
            DagsterEventType.STEP_START,
            DagsterEventType.STEP_SUCCESS,
            DagsterEventType.STEP_FAILURE,
            DagsterEventType.STEP_SKIPPED,
            DagsterEventType.ASSET_CHECK_EVALUATION,
            DagsterEventType.ASSET_MATERIALIZATION,
        },
    )
    events = [e.dagster_event for e in logs if e.dagster_event is not None]
    checks = _failed_blocking_checks(watch, events)
    for check, numbers in checks:
        found.append(messages.failed_check(watch.mapping, run.run_id, kind, tags, check, numbers))
    if run.status == dg.DagsterRunStatus.FAILURE:
        steps = _step_errors(events, skip_check_failures=bool(checks))
        if steps or not checks:
            found.append(messages.failed_run(watch.mapping, run.run_id, kind, tags, steps))
    elif run.status == dg.DagsterRunStatus.CANCELED:
        found.append(messages.canceled_run(watch.mapping, run.run_id, kind, tags, _unfinished(events)))
    if run.status != dg.DagsterRunStatus.CANCELED:
        refusals = _refusals(watch, run.run_id, events)
        if refusals is not None:
            n, total, reasons = refusals
            counts = (n, total, watch.alerts.max_refused_share)
            found.append(messages.refused(watch.mapping, run.run_id, kind, tags, counts, reasons))
    return found


def _failed_blocking_checks(
    watch: Watch, events: list[dg.DagsterEvent]
) -> list[tuple[tuple[str, str, str], dict[str, float | int]]]:
    found = []
    for event in events:
        if event.event_type != DagsterEventType.ASSET_CHECK_EVALUATION:
            continue
        evaluation = event.event_specific_data
        if evaluation.passed or evaluation.severity != dg.AssetCheckSeverity.ERROR:
            continue
        asset = evaluation.asset_key.to_user_string()
        declared = (asset, evaluation.check_name) in watch.blocking
        if not (declared or evaluation.blocking):
            continue
        description = watch.blocking.get((asset, evaluation.check_name)) or evaluation.description or ""
        # only plain numbers from the metadata: the tables hold record values, not for a chat channel
        numbers = {
            k: v.value
            for k, v in evaluation.metadata.items()
            if isinstance(v.value, int | float) and not isinstance(v.value, bool)
        }
        found.append(((asset, evaluation.check_name, description), numbers))
    return found


def _step_errors(events: list[dg.DagsterEvent], skip_check_failures: bool) -> list[StepError]:
    errors = []
    for event in events:
        if event.event_type != DagsterEventType.STEP_FAILURE:
            continue
        data = event.step_failure_data
        error = data.error
        if skip_check_failures and error is not None and error.cls_name == CHECK_FAILED_ERROR:
            continue
        if data.user_failure_data is not None and data.user_failure_data.description:
            text = data.user_failure_data.description
        elif error is not None:
            text = _user_error(error)
        else:
            text = event.message or "no error recorded"
        errors.append(StepError(event.step_key or "?", text))
    return errors


def _user_error(error: SerializableErrorInfo) -> str:
    """The error the step's own code raised, as `Class: first line`: Dagster wraps it in an
    "Error occurred while executing op" and, after a retry policy ran out, in RetryRequestedFromPolicy."""
    while error.cause is not None and error.cls_name in WRAPPERS:
        error = error.cause
    text = re.sub(rf"^[\w.]*{re.escape(error.cls_name or '')}: ", "", error.message.lstrip())
    return f"{error.cls_name}: {text}" if error.cls_name else text


def _unfinished(events: list[dg.DagsterEvent]) -> list[str]:
    started = [e.step_key for e in events if e.event_type == DagsterEventType.STEP_START and e.step_key]
    ended = {
        e.step_key
        for e in events
        if e.event_type
        in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE, DagsterEventType.STEP_SKIPPED)
    }
    return [s for s in dict.fromkeys(started) if s not in ended]


def is_dry_run(run: dg.DagsterRun) -> bool:
    """A dry run's refusals are predictions (contacts without e-mail), not an incident; the CLI
    (alerts/cli.py) tells nothing of a dry run, whose person watches it at the terminal."""
    if run.tags.get("ploomes_cx/dry_run") == "true":
        return True
    ops = (run.run_config or {}).get("ops", {}) if isinstance(run.run_config, dict) else {}
    return any(isinstance(o, dict) and (o.get("config") or {}).get("dry_run") for o in ops.values())


def _refusals(watch: Watch, run_id: str, events: list[dg.DagsterEvent]) -> tuple[int, int, list[str]] | None:
    """(refused, records, top reasons) when the share is above the mapping's, else None."""
    counted = _ledger_refusals(watch.database, watch.mapping, run_id)
    if counted is None:
        counted = _metadata_refusals(watch.mapping, run_id, events)
    n, total, reasons = counted
    if total == 0 or n / total <= watch.alerts.max_refused_share:
        return None
    return n, total, reasons


def _ledger_refusals(database: Path, schema: str, run_id: str) -> tuple[int, int, list[str]] | None:
    """From the ledger; None while another process holds the file (it retries for a few seconds)."""
    if not database.exists():
        return 0, 0, []
    try:
        with read_only(database, wait_seconds=LOCK_WAIT_SECONDS) as con:
            exists = con.execute(
                "select count(*) from duckdb_tables() where schema_name = ? and table_name = 'ledger'",
                [schema],
            ).fetchall()[0][0]
            if not exists:
                return 0, 0, []
            total = con.execute(f"select count(*) from {schema}.ledger where run_id = ?", [run_id]).fetchall()
            rows = con.execute(
                f"select entity, http_status, detail from {schema}.ledger where run_id = ? "
                "and outcome = 'rejected' and not (http_status is null and starts_with(coalesce(detail, ''), ?))",
                [run_id, REPEATED_REFUSAL],
            ).fetchall()
    except WarehouseBusy:
        return None
    return len(rows), int(total[0][0]), messages.top_reasons(rows)


def _metadata_refusals(schema: str, run_id: str, events: list[dg.DagsterEvent]) -> tuple[int, int, list[str]]:
    refused = total = 0
    for event in events:
        if event.event_type != DagsterEventType.ASSET_MATERIALIZATION:
            continue
        meta = event.step_materialization_data.materialization.metadata
        if "rejected_by_customerx" not in meta:
            continue
        refused += int(meta["rejected_by_customerx"].value)
        total += sum(int(meta[k].value) for k in COUNT_KEYS if k in meta)
    why = f"reasons: in {schema}.ledger (run_id = '{run_id}'); the database was busy when this was sent"
    return refused, total, [why]
