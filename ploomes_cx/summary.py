"""What one window's run did, read from its events by the plan's asset roles and the metadata keys
of `metadata.py`; and the totals of a sync over its windows, which the CLI prints.

Nothing here parses an asset name or a log line: an asset's layer and entity come from the
mapping's `Plan`, its counts from the named metadata keys, a failure's kind from the metadata
the step's `Failure` carries, and its message from the user's own exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from ploomes_cx.metadata import ERROR_KIND, RECORDS, REVIEW_WITH, STAGING_PATH, TO_REVIEW, Count
from ploomes_cx.plan import Plan


@dataclass
class WindowSummary:
    key: str
    success: bool
    seconds: float
    run_id: str
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # entity -> Count -> n
    errors: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    records_failed: int = 0
    error_kinds: set[str] = field(default_factory=set)
    raw_entities: set[str] = field(default_factory=set)  # the counts' keys that are raw extracts
    windows: int = 1  # how many windows the run (a chunk of a range) covered
    staging: str = ""  # full (and why) or incremental (what changed)

    @property
    def extracted(self) -> int:
        """Records read from Ploomes in this window (every raw extract)."""
        return sum(c.get(Count.EXTRACTED, 0) for e, c in self.counts.items() if e in self.raw_entities)


def summarize(
    plan: Plan, key: str, result: dg.ExecuteInProcessResult, seconds: float, windows: int = 1
) -> WindowSummary:
    window = WindowSummary(
        key=key, success=result.success, seconds=seconds, run_id=result.run_id, windows=windows
    )
    for event in result.get_asset_materialization_events():
        _count(plan, window, event.step_materialization_data.materialization)
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if not evaluation.passed:
                window.checks.append(check_line(evaluation))
        elif event.is_step_failure:
            data = event.step_failure_data
            window.errors.append(f"{event.step_key}: {_message(data)}")
            meta = (data.user_failure_data.metadata if data.user_failure_data else {}) or {}
            if ERROR_KIND in meta:
                window.error_kinds.add(str(meta[ERROR_KIND].value))
        elif event.is_failure and not window.errors:
            error = getattr(event.event_specific_data, "error", None)
            if error is not None:
                window.errors.append(_root_message(error))
    return window


def check_line(evaluation: dg.AssetCheckEvaluation) -> str:
    """A check that did not pass, in the CLI's words: `failed`, or `warning` (blocks nothing), with
    how many records wait for a person when the check says so (`TO_REVIEW`)."""
    where = f"{evaluation.asset_key.to_user_string()} {evaluation.check_name}"
    if evaluation.severity != dg.AssetCheckSeverity.WARN:
        return f"{where}: failed"
    waiting, command = evaluation.metadata.get(TO_REVIEW), evaluation.metadata.get(REVIEW_WITH)
    if waiting is None:
        return f"{where}: warning (blocks nothing)"
    how = f" with `{command.value}`" if command is not None else ""
    return f"{where}: warning ({waiting.value} look-alikes to review{how}; candidates, not errors, nothing blocked)"


def combine(key: str, parts: list[WindowSummary], seconds: float) -> WindowSummary:
    """One chunk's summary from its runs (extract, stage, load), which built disjoint assets."""
    window = WindowSummary(
        key=key,
        success=all(p.success for p in parts),
        seconds=seconds,
        run_id=", ".join(p.run_id for p in parts),
        windows=parts[0].windows,
    )
    for part in parts:
        for entity, counts in part.counts.items():
            window.counts.setdefault(entity, {}).update(counts)
        window.errors += part.errors
        window.checks += part.checks
        window.records_failed += part.records_failed
        window.error_kinds |= part.error_kinds
        window.raw_entities |= part.raw_entities
    return window


def _count(plan: Plan, window: WindowSummary, mat: dg.AssetMaterialization) -> None:
    role = plan.role(mat.asset_key)
    if role is None:
        return
    layer, entity = role
    if layer == "raw":
        if RECORDS in mat.metadata:
            window.raw_entities.add(entity)
            window.counts.setdefault(entity, {})[Count.EXTRACTED] = int(mat.metadata[RECORDS].value)
        return
    counts = {c: int(mat.metadata[c].value) for c in Count if c in mat.metadata}
    window.counts.setdefault(entity, {}).update(counts)
    if layer == "staging" and STAGING_PATH in mat.metadata:
        window.staging = str(mat.metadata[STAGING_PATH].value)
    if layer == "load":
        window.records_failed += counts.get(Count.FAILED, 0)


def _message(data: Any) -> str:
    """A step failure in the user's words: our `Failure`'s description, else the deepest cause."""
    if data.user_failure_data is not None and data.user_failure_data.description:
        return data.user_failure_data.description
    return _root_message(data.error)


def _root_message(error: Any) -> str:
    """The deepest cause in the chain, as `Class: message`; Dagster's wrappers say only where."""
    if error is None:
        return "unknown error"
    while getattr(error, "cause", None) is not None:
        error = error.cause
    message = error.message.strip()
    prefix = f"{error.cls_name}: "
    return message if message.startswith(prefix) else prefix + message


@dataclass
class SyncTotals:
    """A sync's table: per entity, what each window did added up, and what the account holds after
    the last window (staging tables and unchanged records describe the whole account each time)."""

    plan: Plan
    rows: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, window: WindowSummary) -> None:
        for entity, counts in window.counts.items():
            row = self.rows.setdefault(entity, {})
            staged = entity in self.plan.staged
            for col, n in counts.items():
                row[col] = n if staged and not Count(col).per_window else row.get(col, 0) + n

    def writes(self) -> int:
        """CustomerX writes the windows made, or, in a dry run, would make (created + updated)."""
        return sum(
            self.rows.get(e, {}).get(Count.CREATED, 0) + self.rows.get(e, {}).get(Count.UPDATED, 0)
            for e in self.plan.staged
        )

    def lines(self) -> list[str]:
        """Raw extracts first, then the staged entities, one column per `Count`."""
        out = [f"{'entity':<15}" + "".join(f"{c.value:>11}" for c in Count)]
        order = sorted(self.rows.items(), key=lambda kv: (kv[0] in self.plan.staged, kv[0]))
        for entity, counts in order:
            out.append(f"{entity:<15}" + "".join(f"{counts.get(c, '-'):>11}" for c in Count))
        return out
