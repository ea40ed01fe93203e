"""Raw layer: one partitioned asset per Ploomes entity a mapping needs, stored as-returned in DuckDB.

Each row keeps the record exactly as the API sent it (`payload`, JSON text) next to the few
columns the layer needs to be queried and replaced by window. Keeping raw raw means a change in
cleaning rules never needs a re-extraction, and a schema change in the API never breaks a write.
"""

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
from dagster import AssetExecutionContext

from ploomes_cx.mapping import Mapping
from ploomes_cx.metadata import markdown
from ploomes_cx.partitions import partitions_def
from ploomes_cx.plan import Plan
from ploomes_cx.ploomes.client import (
    CallStats,
    PloomesAuthError,
    PloomesError,
    PloomesRequestError,
)
from ploomes_cx.ploomes.entities import ENTITIES, EntitySpec
from ploomes_cx.ploomes.fields import catalogue_types
from ploomes_cx.ploomes.resource import PloomesResource

RAW_COLUMNS = dg.TableSchema(
    columns=[
        dg.TableColumn(
            "window_start", "timestamp", description="Start of the sync window (partition), local time"
        ),
        dg.TableColumn("id", "bigint", description="Ploomes Id"),
        dg.TableColumn(
            "changed_at", "timestamp", description="LastUpdateDate (CreateDate for attachments), local"
        ),
        dg.TableColumn("payload", "json", description="The record exactly as the Ploomes API returned it"),
        dg.TableColumn("extracted_at", "timestamp", description="When this copy was read, UTC"),
        dg.TableColumn("run_id", "varchar", description="Dagster run that read it"),
    ]
)
FIELDS_COLUMNS = dg.TableSchema(
    columns=[
        dg.TableColumn("window_start", "timestamp", description="Sync window the catalogue was read for"),
        dg.TableColumn("id", "bigint", description="Ploomes field Id"),
        dg.TableColumn("field_key", "varchar", description="FieldKey, as used in OtherProperties"),
        dg.TableColumn("entity_id", "bigint", description="1 contact, 2 deal, 4 order, 12 task"),
        dg.TableColumn("payload", "json", description="The field definition as returned"),
        dg.TableColumn("extracted_at", "timestamp", description="When it was read, UTC"),
        dg.TableColumn("run_id", "varchar", description="Dagster run that read it"),
    ]
)
STEP_RETRIES = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
# EntityId of the record a mapped custom field must belong to (ploomes-api.md §6).
CONTACT_ENTITY, DEAL_ENTITY = 1, 2


def parse_ploomes_datetime(text: str, naive_zone: ZoneInfo) -> dt.datetime:
    """Aware datetime from a Ploomes date; offset-less values are account-local (I, §5)."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=naive_zone)


def raw_frame(
    records: Iterable[dict[str, Any]],
    date_field: str,
    window: dg.TimeWindow,
    naive_zone: ZoneInfo,
    run_id: str,
) -> tuple[pd.DataFrame, list[int]]:
    """The partition's rows, and the ids of records whose date falls outside the window.

    Such records were not asked for; they are left to the window they belong to (which extracts
    them), and reported, never stored in the wrong partition.
    """
    zone = window.start.tzinfo
    start, end = window.start, window.end
    local_start = start.replace(tzinfo=None)
    extracted_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows, outside = [], []
    for record in records:
        stamp = parse_ploomes_datetime(record[date_field], naive_zone)
        if not start <= stamp < end:
            outside.append(int(record["Id"]))
            continue
        rows.append(
            (
                local_start,
                int(record["Id"]),
                stamp.astimezone(zone).replace(tzinfo=None),
                json.dumps(record, ensure_ascii=False, separators=(",", ":")),
                extracted_at,
                run_id,
            )
        )
    frame = pd.DataFrame(rows, columns=[c.name for c in RAW_COLUMNS.columns])
    return _typed(frame, {"id": "int64", "payload": "string", "run_id": "string"}), outside


def _typed(frame: pd.DataFrame, dtypes: dict[str, str]) -> pd.DataFrame:
    """Fixed dtypes even for an empty frame, so DuckDB creates the same table either way."""
    for col in frame.columns:
        if col in dtypes:
            frame[col] = frame[col].astype(dtypes[col])
        elif col in ("window_start", "changed_at", "extracted_at"):
            frame[col] = pd.to_datetime(frame[col]).astype("datetime64[us]")
    return frame


def fields_frame(catalogue: list[dict[str, Any]], window: dg.TimeWindow, run_id: str) -> pd.DataFrame:
    """The `raw_fields` rows of one window: the catalogue as returned, one row per field."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    frame = pd.DataFrame(
        [
            (
                window.start.replace(tzinfo=None),
                int(f["Id"]),
                str(f.get("Key")),
                int(f.get("EntityId") or 0),
                json.dumps(f, ensure_ascii=False),
                now,
                run_id,
            )
            for f in catalogue
        ],
        columns=[c.name for c in FIELDS_COLUMNS.columns],
    )
    return _typed(
        frame,
        {"id": "int64", "entity_id": "int64", "field_key": "string", "payload": "string", "run_id": "string"},
    )


def check_custom_fields(m: Mapping, catalogue: list[dict[str, Any]]) -> list[str]:
    """Problems with the mapping's custom-field keys against the account's `/Fields`."""
    by_key = {f.get("Key"): f for f in catalogue}
    contract_entities = {DEAL_ENTITY} if m.contracts.source == "won_deals" else {DEAL_ENTITY, 4}
    wanted = {"clients": {CONTACT_ENTITY}, "contacts": {CONTACT_ENTITY}, "contracts": contract_entities}
    problems = []
    for entity, allowed in wanted.items():
        for n, cf in enumerate(getattr(m.custom_fields, entity)):
            where = f"custom_fields.{entity}[{n}].ploomes"
            field = by_key.get(cf.ploomes)
            if field is None:
                problems.append(f"{where}: {cf.ploomes!r} is not a field of this Ploomes account")
            elif field.get("EntityId") not in allowed:
                problems.append(
                    f"{where}: {cf.ploomes!r} belongs to Ploomes entity {field.get('EntityId')}, "
                    f"but {entity} are read from entity {sorted(allowed)}"
                )
    if m.uses_external_code_custom_field:
        field = by_key.get(m.external_code_field)
        if field is None or field.get("EntityId") != CONTACT_ENTITY:
            problems.append(
                f"external_code_field: {m.external_code_field!r} is neither Key nor a contact field "
                "of this Ploomes account"
            )
    problems += catalogue_types(catalogue, m.read_field_keys, m.ploomes.field_type_slots)[1]
    if problems:
        known = sorted(k for k, f in by_key.items() if k and "_" in k and f.get("EntityId") in (1, 2, 4))
        problems.append(f"fields of this account: {', '.join(known[:40])}")
    return problems


def _failure(exc: PloomesError) -> dg.Failure:
    """Errors retrying cannot fix end the step at once, tagged so the CLI picks its exit code."""
    kind = "auth" if isinstance(exc, PloomesAuthError) else "request"
    return dg.Failure(description=str(exc), metadata={"ploomes_cx_error": kind}, allow_retries=False)


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


def _stats_metadata(stats: CallStats, window: dg.TimeWindow) -> dict[str, Any]:
    return {
        "window": f"[{window.start.isoformat()}, {window.end.isoformat()})",
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
            raise dg.Failure(
                description=f"{m.source_path}: the mapping's fields do not match this Ploomes account\n  "
                + "\n  ".join(problems),
                metadata={"ploomes_cx_error": "mapping"},
                allow_retries=False,
            )
        window = context.partition_time_window
        frame = fields_frame(catalogue, window, context.run_id)
        custom = [f for f in catalogue if str(f.get("Key", "")).count("-") >= 4]
        context.add_output_metadata(
            {
                **_stats_metadata(stats, window),
                "records": len(frame),
                "custom_fields": len(custom),
                "mapped_custom_fields": dg.MetadataValue.json(sorted(m.custom_fields.all_keys())),
                "preview": _fields_preview(catalogue, m.custom_fields.all_keys()),
            }
        )
        return frame

    return raw_fields


def build_entity_asset(m: Mapping, spec: EntitySpec) -> dg.AssetsDefinition:
    plan = Plan.of(m)
    resource_key = plan.ploomes_resource
    naive_zone = ZoneInfo(m.ploomes.naive_datetime_timezone)

    @dg.asset(
        key=plan.raw_key(spec.name),
        group_name=plan.group("raw"),
        kinds={"ploomes", "duckdb"},
        partitions_def=partitions_def(m),
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
        description=(
            f"{spec.description}\n\nRead from `{spec.path}`"
            + (f" where `{spec.base_filter}`" if spec.base_filter else "")
            + f", windowed on `{spec.date_field}` in [start, end) of the partition; stored as returned."
        ),
    )
    def _raw(context: AssetExecutionContext) -> pd.DataFrame:
        resource: PloomesResource = getattr(context.resources, resource_key)
        window = context.partition_time_window
        stats = CallStats()
        records: list[dict[str, Any]] = []
        with resource.one_step_at_a_time(context.log), resource.api(context.log) as api:
            try:
                for page in api.iter_window(spec, window.start, window.end, stats):
                    records.extend(page)
            except (PloomesAuthError, PloomesRequestError) as exc:
                raise _failure(exc) from None
        frame, outside = raw_frame(records, spec.date_field, window, naive_zone, context.run_id)
        if outside:
            context.log.warning(
                f"{len(outside)} record(s) came back dated outside {window.start}..{window.end} and were left "
                f"to the window they belong to (first ids: {outside[:10]}); check ploomes.naive_datetime_timezone."
            )
        context.add_output_metadata(
            {
                **_stats_metadata(stats, window),
                "records": len(frame),
                "out_of_window": len(outside),
                "preview": _preview(frame),
            }
        )
        return frame

    return _raw


def build_raw_assets(m: Mapping) -> list[dg.AssetsDefinition]:
    return [build_fields_asset(m)] + [build_entity_asset(m, ENTITIES[e]) for e in Plan.of(m).entity_extracts]
