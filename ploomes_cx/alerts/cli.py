"""The alerts of the runs a command made in its own process, sent as soon as they end.

`ploomes-cx sync`, `reconcile` and `listen` execute their runs in the CLI's process; the alert
sensors only tick while a Dagster daemon runs, so a failing `sync` from cron would tell nobody
until one starts. The command therefore reports its own runs at once, through the sensors'
`report_run`: the sent record (sent.py) is claimed before anything goes out, so a daemon that
sees the same runs later, or at the same moment, sends nothing more.

Reporting is a side effect: whatever goes wrong here prints one line and never changes the
command's exit code. Nothing printed holds a secret (the line names the target's kind, never
its URL, and every error text is redacted like a message). A dry run is not reported at all.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import dagster as dg

from ploomes_cx.alerts import messages
from ploomes_cx.alerts.incidents import Watch, is_dry_run
from ploomes_cx.alerts.sensors import EMAIL, WEBHOOK, report_run, secret_env_names, watch_of
from ploomes_cx.alerts.sent import SentRecord

if TYPE_CHECKING:
    from ploomes_cx.mapping import Mapping

TARGET_NAMES = {WEBHOOK: "webhook", EMAIL: "e-mail"}
SUBJECT_PREFIX = "[ploomes-cx] "


class _Quiet(logging.LoggerAdapter):
    """Takes `attempt`'s warnings and drops them: each record keeps its targets' errors, which the
    command tells in its one line instead of a second, longer one on stderr. An error (the sent
    records cannot be written, so nothing de-duplicates) is printed on stderr as it is (redacted)."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if level >= logging.ERROR:
            print(msg, file=sys.stderr, flush=True)


def report_cli_runs(m: Mapping, run_ids: Sequence[str], instance: dg.DagsterInstance) -> None:
    """Send the incidents of the command's finished runs that nobody sent yet; print one line when
    something was sent or could not be. Nothing when the mapping has no `alerts:` key."""
    if m.alerts is None or not run_ids:
        return
    hidden = _secrets(m)
    try:
        records = _report(_watch(m), run_ids, instance)
    except Exception as exc:  # reading the runs or the ledger failed: told, never the command's outcome
        why = messages.redact(messages.first_line(f"{type(exc).__name__}: {exc}"), hidden)
        print(f"alert could not be sent: {why}", file=sys.stderr, flush=True)
        return
    if records:
        line, ok = _line(m, records)
        print(messages.redact(line, hidden), file=sys.stdout if ok else sys.stderr, flush=True)


def _secrets(m: Mapping) -> dict[str, str]:
    """The values of every variable the mapping names, each with its `$NAME` (as in a message)."""
    assert m.alerts is not None
    names = secret_env_names(m.model_dump()) | set(m.alerts.env_names())
    return {os.environ[n]: f"${n}" for n in names if os.environ.get(n)}


def _watch(m: Mapping) -> Watch:
    """The Watch the mapping's sensors use (factory.py builds the same from the same defs)."""
    from ploomes_cx.factory import build_integration_defs  # the factory imports the alert sensors
    from ploomes_cx.plan import Plan

    plan = Plan.of(m)
    assets = [a for a in build_integration_defs(m).assets or [] if isinstance(a, dg.AssetsDefinition)]
    return watch_of(m, assets, {plan.job: "sync", plan.reconcile_job: "reconcile", plan.live_job: "live"})


def _report(watch: Watch, run_ids: Sequence[str], instance: dg.DagsterInstance) -> list[SentRecord]:
    """The records of the incidents this call claimed (and offered to every target)."""
    claimed: list[SentRecord] = []
    for run_id in dict.fromkeys(run_ids):
        run = instance.get_run_by_id(run_id)
        if run is None or not run.is_finished or is_dry_run(run):
            continue
        claimed += report_run(watch, instance, run, _Quiet(logging.getLogger(__name__)))
    return claimed


def _line(m: Mapping, records: list[SentRecord]) -> tuple[str, bool]:
    """The command's one line about its alerts, and whether every target took every message."""
    what = "; ".join(r.subject.removeprefix(SUBJECT_PREFIX) for r in records)
    kinds = list(dict.fromkeys(t for r in records for t in r.targets))
    failed = {t: _error(records, t) for t in kinds if any(r.targets.get(t) != "sent" for r in records)}
    sent = [TARGET_NAMES.get(t, t) for t in kinds if t not in failed]
    noun = "alert" if len(records) == 1 else f"{len(records)} alerts"
    if not failed:
        return f"{noun} sent by {' and '.join(sent)}: {what}", True
    why = "; ".join(f"{TARGET_NAMES.get(t, t)}: {error}" for t, error in failed.items())
    also = f", sent by {' and '.join(sent)}" if sent else ""
    return (
        f"{noun} could not be sent by {' and '.join(TARGET_NAMES.get(t, t) for t in failed)} ({why}){also}: "
        f"{what}; the {m.name}_alerts_retry sensor tries again while a Dagster daemon runs",
        False,
    )


def _error(records: list[SentRecord], target: str) -> str:
    return next((r.errors[target] for r in records if r.errors.get(target)), "not sent")
