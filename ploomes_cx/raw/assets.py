"""Raw layer: one partitioned asset per Ploomes entity a mapping needs, stored as-returned in DuckDB.

Each row keeps the record exactly as the API sent it (`payload`, JSON text) next to the few
columns the layer needs to be queried and replaced by window. Keeping raw raw means a change in
cleaning rules never needs a re-extraction, and a schema change in the API never breaks a write.
"""

from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
from dagster import AssetExecutionContext

from ploomes_cx.mapping import Mapping
from ploomes_cx.metadata import RECORDS, ErrorKind, failure, markdown
from ploomes_cx.partitions import backfill_policy, opens_history, partitions_def, window_cutter
from ploomes_cx.plan import Plan
from ploomes_cx.ploomes import by_key
from ploomes_cx.ploomes.catalogue import check_custom_fields, is_custom
from ploomes_cx.ploomes.client import (
    CallStats,
    PloomesAuthError,
    PloomesError,
    PloomesRequestError,
)
from ploomes_cx.ploomes.entities import ENTITIES, EntitySpec
from ploomes_cx.ploomes.resource import PloomesResource
from ploomes_cx.ploomes.windows import read_window
from ploomes_cx.raw.frames import FIELDS_COLUMNS, RAW_COLUMNS, fields_frame, raw_frame

STEP_RETRIES = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def _failure(exc: PloomesError) -> dg.Failure:
    """Errors retrying cannot fix end the step at once, tagged so the CLI picks its exit code."""
    return failure(str(exc), ErrorKind.AUTH if isinstance(exc, PloomesAuthError) else ErrorKind.REQUEST)


def _fields_preview(catalogue: list[dict], mapped: set[str]) -> dg.MetadataValue:
    """The mapped custom fields first: those are the ones a reader checks."""
    rows = sorted(
        (
            {
                "mapped": str(f.get("Key")) in mapped,
                "field_key": f.get("Key"),
                "name": f.get("Name"),
                "entity_id": f.get("EntityId"),
            }
            for f in catalogue
        ),
        key=lambda r: (not r["mapped"], str(r["field_key"])),
    )
    return markdown(pd.DataFrame(rows, columns=["mapped", "field_key", "name", "entity_id"]), limit=10)


def _preview(frame: pd.DataFrame) -> dg.MetadataValue:
    head = frame.head(5)
    lines = ["| id | changed_at | payload |", "|---|---|---|"]
    for row in head.itertuples():
        lines.append(f"| {row.id} | {row.changed_at} | `{str(row.payload)[:80].replace('|', '/')}…` |")
    return dg.MetadataValue.md("\n".join(lines) if len(head) else "_no records in this window_")


def _by_window(m: Mapping, frame: pd.DataFrame) -> dg.MetadataValue:
    """A run over several windows writes every one of them, each row in its own window: how many."""
    counts = frame.groupby("window_start").size()
    label = (
        (lambda k: str(k.date())) if m.sync.cadence == "daily" else (lambda k: k.strftime("%Y-%m-%d-%H:%M"))
    )
    return dg.MetadataValue.json({label(k): int(n) for k, n in counts.items()})


def history_note(m: Mapping) -> str:
    """What the asset descriptions say about the history window, when the mapping has one."""
    if not m.sync.history:
        return ""
    return (
        f"\n\nThe first window ({partitions_def(m).get_first_partition_key()}) is the history window "
        "(`sync.history`): it has no start, so it holds every record last changed before its end, the "
        "whole account as it was. Materializing it again, from the UI or the CLI, reads the whole account again."
    )


def _stats_metadata(stats: CallStats, window: dg.TimeWindow, history: bool = False) -> dict[str, Any]:
    start = "(history" if history else f"[{window.start.isoformat()}"
    return {
        "window": f"{start}, {window.end.isoformat()})",
        "pages": stats.pages,
        "requests": stats.requests,
        "retries": stats.retries,
        "rate_limited_429": stats.rate_limited,
        "retry_reasons": dg.MetadataValue.json(stats.reasons),
    }


def build_fields_asset(m: Mapping) -> dg.AssetsDefinition:
    plan = Plan.of(m)
    resource_key = plan.ploomes_resource

    @dg.asset(
        key=plan.raw_key("fields"),
        group_name=plan.group("raw"),
        kinds={"ploomes", "duckdb"},
        partitions_def=partitions_def(m),
        backfill_policy=backfill_policy(m),
        io_manager_key=plan.io_manager,
        required_resource_keys={resource_key},
        pool=plan.ploomes_pool,
        retry_policy=STEP_RETRIES,
        metadata={"partition_expr": "window_start", "dagster/column_schema": FIELDS_COLUMNS},
        description=(
            "The Ploomes field catalogue (`/Fields`, native and custom) as of this window. The mapping's "
            "custom-field keys and external code field are checked against it before anything else is read."
        ),
    )
    def raw_fields(context: AssetExecutionContext) -> pd.DataFrame:
        resource: PloomesResource = getattr(context.resources, resource_key)
        stats = CallStats()
        with resource.one_step_at_a_time(context.log), resource.api(context.log) as api:
            try:
                catalogue = api.fields(stats)
            except (PloomesAuthError, PloomesRequestError) as exc:
                raise _failure(exc) from None
        problems = check_custom_fields(m, catalogue)
        if problems:
            raise failure(
                f"{m.source_path}: the mapping's fields do not match this Ploomes account\n  "
                + "\n  ".join(problems),
                ErrorKind.MAPPING,
            )
        window = context.partition_time_window
        frame = fields_frame(catalogue, window, context.run_id)
        custom = [f for f in catalogue if is_custom(f)]
        context.add_output_metadata(
            {
                **_stats_metadata(stats, window),
                RECORDS: len(frame),
                "custom_fields": len(custom),
                "mapped_custom_fields": dg.MetadataValue.json(sorted(m.custom_fields.all_keys())),
                "preview": _fields_preview(catalogue, m.custom_fields.all_keys()),
            }
        )
        return frame

    return raw_fields


def _entity_description(m: Mapping, spec: EntitySpec) -> str:
    return (
        f"{spec.description}\n\nRead from `{spec.path}`"
        + (f" where `{spec.base_filter}`" if spec.base_filter else "")
        + f", windowed on `{spec.date_field}` in [start, end) of the partition; stored as returned. A run "
        "over several windows (a range, a backfill) reads them in one pass and stores each record in the "
        "window its change date falls in." + history_note(m)
    )


def build_entity_asset(m: Mapping, spec: EntitySpec) -> dg.AssetsDefinition:
    plan = Plan.of(m)
    resource_key = plan.ploomes_resource
    naive_zone = ZoneInfo(m.ploomes.naive_datetime_timezone)
    cut = window_cutter(m)

    @dg.asset(
        key=plan.raw_key(spec.name),
        group_name=plan.group("raw"),
        kinds={"ploomes", "duckdb"},
        partitions_def=partitions_def(m),
        backfill_policy=backfill_policy(m),
        io_manager_key=plan.io_manager,
        required_resource_keys={resource_key},
        deps=[plan.raw_key("fields")],
        pool=plan.ploomes_pool,
        retry_policy=STEP_RETRIES,
        metadata={
            "partition_expr": "window_start",
            "dagster/column_schema": RAW_COLUMNS,
            "ploomes_endpoint": spec.path,
            "window_field": spec.date_field,
        },
        description=_entity_description(m, spec),
    )
    def _raw(context: AssetExecutionContext) -> pd.DataFrame:
        resource: PloomesResource = getattr(context.resources, resource_key)
        window = context.partition_time_window
        stats = CallStats()
        history = opens_history(m, context.partition_key_range.start)
        with resource.one_step_at_a_time(context.log), resource.api(context.log) as api:
            try:
                start = None if history else window.start
                read = read_window(api, spec, start, window.end, stats, naive_zone)
                read_by_key = by_key.complete(api, spec, read.records, stats)
            except (PloomesAuthError, PloomesRequestError) as exc:
                raise _failure(exc) from None
        frame, outside = raw_frame(
            read.records, spec.date_field, window, naive_zone, context.run_id, history, cut, read.placed
        )
        _warn_outside(context, outside, window)
        context.add_output_metadata(
            {
                **_stats_metadata(stats, window, history),
                RECORDS: len(frame),
                "history_window": history,
                "out_of_window": len(outside),
                "read_by_key": read_by_key,
                "read_as": read.form,  # `window`, or another form the account takes (windows.py)
                "records_by_window": _by_window(m, frame),
                "preview": _preview(frame),
            }
        )
        return frame

    return _raw


def _warn_outside(context: AssetExecutionContext, outside: list[int], window: dg.TimeWindow) -> None:
    if outside:
        context.log.warning(
            f"{len(outside)} record(s) came back dated outside {window.start}..{window.end} and were left "
            f"to the window they belong to (first ids: {outside[:10]}); check ploomes.naive_datetime_timezone."
        )


def build_raw_assets(m: Mapping) -> list[dg.AssetsDefinition]:
    return [build_fields_asset(m)] + [build_entity_asset(m, ENTITIES[e]) for e in Plan.of(m).entity_extracts]
