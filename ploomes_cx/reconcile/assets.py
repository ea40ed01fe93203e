"""The mapping's `reconcile` asset, its job and its weekly schedule (stopped by default).

The Ploomes listing runs first, in Ploomes' turn and without the DuckDB file held; then, in
CustomerX's turn, the crosswalk is read, the decision made, the guard held, and the calls made.
No `from __future__ import annotations` here: Dagster reads the context annotation at runtime.
"""

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
from dagster import AssetExecutionContext
from dagster_duckdb import DuckDBResource

from ploomes_cx.customerx.client import CustomerXAuthError, CustomerXUnavailableError
from ploomes_cx.customerx.resource import CustomerXResource
from ploomes_cx.load import ledger
from ploomes_cx.mapping import Mapping
from ploomes_cx.metadata import ERROR_KIND, ErrorKind, failure, markdown
from ploomes_cx.plan import Plan
from ploomes_cx.ploomes.client import PloomesAuthError, PloomesError
from ploomes_cx.ploomes.resource import PloomesResource
from ploomes_cx.reconcile import report, tombstones
from ploomes_cx.reconcile.apply import apply
from ploomes_cx.reconcile.decide import Decision, decide
from ploomes_cx.reconcile.listing import Listing, list_ploomes
from ploomes_cx.reconcile.origins import sets_for
from ploomes_cx.runtime.duckdb_io import connection, table_exists

# the metadata keys the CLI reads back
REPORT, FAILED = "report", "failed"


GONE_COLUMNS = dg.TableSchema(
    columns=[
        dg.TableColumn(
            "ploomes_set", "varchar", description="The Ploomes entity set, e.g. /Contacts or /Deals"
        ),
        dg.TableColumn("ploomes_id", "bigint", description="The Id Ploomes no longer lists"),
        dg.TableColumn("deleted_at", "varchar", description="When Ploomes says it was deleted (deals only)"),
        dg.TableColumn("found_at", "timestamp", description="When a reconcile first found it gone, UTC"),
        dg.TableColumn("run_id", "varchar", description="The Dagster run of that reconcile"),
    ]
)


class ReconcileConfig(dg.Config):
    dry_run: bool = False


def _describe(m: Mapping) -> str:
    return (
        "Finds the records CustomerX holds from us whose Ploomes record is gone (deleted, or merged away) by "
        "listing the Ids of every Ploomes set the mapping uses (`$select=Id`) and `Deals/GetDeletedDeals`, "
        f"and applies `deletes.policy` ({m.deletes.policy}): ignore = ledger only; cancel = a gone deal's "
        "contracts and every contract of a gone client are cancelled; delete = gone clients, contacts and "
        "contracts are deleted. Timeline entries are never deleted. If more than deletes.max_share "
        f"({m.deletes.max_share:.0%}) of an entity would be removed, nothing is and the run fails naming it. "
        f"What is found gone is kept in `{m.name}.ploomes_gone`, so staging stops staging it; every "
        f"outcome is in `{m.name}.ledger`. Weekly schedule, stopped by default; `ploomes-cx reconcile "
        f"{m.name} --dry-run` shows what it would do."
    )


def build_reconcile_asset(m: Mapping) -> dg.AssetsDefinition:
    plan = Plan.of(m)
    ploomes_key, cx_key, duck_key = plan.ploomes_resource, plan.customerx_resource, plan.duckdb_resource

    @dg.asset(
        key=plan.reconcile_key,
        group_name=plan.group("load"),
        kinds={"ploomes", "customerx", "duckdb"},
        deps=[plan.load_key(e) for e in plan.staged],
        required_resource_keys={ploomes_key, cx_key, duck_key},
        pool=plan.customerx_pool,
        description=_describe(m),
        metadata={"dagster/column_schema": GONE_COLUMNS},
    )
    def _reconcile(context: AssetExecutionContext, config: ReconcileConfig) -> dg.MaterializeResult:
        ploomes: PloomesResource = getattr(context.resources, ploomes_key)
        customerx: CustomerXResource = getattr(context.resources, cx_key)
        duck: DuckDBResource = getattr(context.resources, duck_key)
        listing = _list(m, ploomes, duck, context)
        with customerx.one_step_at_a_time(context.log), connection(duck) as con:
            held = tombstones.held(con, m.name, listing.started)
            statuses = (
                ledger.contract_statuses(con, m.name) if table_exists(con, m.name, "contract_status") else {}
            )
            today = dt.datetime.now(ZoneInfo(m.sync.timezone)).date()
            decision = decide(m, held, statuses, listing, tombstones.known(con, m.name), today)
            if decision.guard:
                raise _guard_failure(m, decision, listing)
            if config.dry_run:
                return _result(decision, listing, None, True, tombstones.count(con, m.name))
            api = customerx.api(context.log)
            try:
                applied = apply(decision, api, con, m.name, context.run_id)
            except (CustomerXAuthError, CustomerXUnavailableError) as exc:
                raise failure(str(exc), ErrorKind.CUSTOMERX) from None
            finally:
                api.close()
            gone = tombstones.count(con, m.name)
        result = _result(decision, listing, applied.counts, False, gone)
        if applied.refusals:
            result.metadata["refusals"] = markdown(pd.DataFrame(applied.refusals))
        return result

    return _reconcile


def _list(
    m: Mapping, ploomes: PloomesResource, duck: DuckDBResource, context: AssetExecutionContext
) -> Listing:
    with connection(duck) as con:
        entities = tombstones.held_entities(con, m.name)
    api = ploomes.api(context.log)
    try:
        with ploomes.one_step_at_a_time(context.log):
            return list_ploomes(api, m, sets_for(m, entities))
    except PloomesError as exc:
        kind = ErrorKind.AUTH if isinstance(exc, PloomesAuthError) else ErrorKind.REQUEST
        raise failure(str(exc), kind) from None
    finally:
        api.close()


def _guard_failure(m: Mapping, d: Decision, listing: Listing) -> dg.Failure:
    text = (
        "reconcile removed nothing: "
        + "; ".join(d.guard)
        + ". A listing that came back short must never empty CustomerX; if Ploomes really lost these "
        f"records, raise deletes.max_share in {m.source_path} for one run."
    )
    return dg.Failure(
        description=text,
        metadata={
            ERROR_KIND: ErrorKind.GUARD.value,
            REPORT: dg.MetadataValue.text("\n".join(report.lines(d, listing, None))),
            "findings": markdown(report.findings_frame(d)),
        },
        allow_retries=False,
    )


def _result(
    d: Decision, listing: Listing, outcomes: Counter | None, dry_run: bool, gone: int
) -> dg.MaterializeResult:
    failed = 0 if outcomes is None else outcomes["rejected"] + outcomes["failed"]
    return dg.MaterializeResult(
        metadata={
            "dry_run": dry_run,
            "policy": d.policy,
            FAILED: failed,
            "ploomes_requests": listing.requests,
            "ploomes_seconds": round(listing.seconds, 2),
            "listing_cost": markdown(report.cost_frame(listing)),
            "actions": markdown(report.actions_frame(d), limit=20),
            "preview": markdown(report.findings_frame(d)),
            "dagster/row_count": gone,
            REPORT: dg.MetadataValue.text("\n".join(report.lines(d, listing, outcomes))),
        }
    )


def build_reconcile_job(
    m: Mapping, asset: dg.AssetsDefinition, tags: dict[str, str]
) -> "tuple[dg.UnresolvedAssetJobDefinition, dg.ScheduleDefinition]":
    """Its own job (unpartitioned: it looks at the whole account), queued with the mapping's syncs."""
    plan = Plan.of(m)
    job = dg.define_asset_job(
        plan.reconcile_job,
        selection=dg.AssetSelection.assets(asset),
        description=f"Find and apply Ploomes deletes for mapping {m.name!r} (deletes.policy: {m.deletes.policy}).",
        tags=tags,
        executor_def=dg.in_process_executor,
    )
    schedule = dg.ScheduleDefinition(
        name=f"{plan.reconcile_job}_weekly",
        job=job,
        cron_schedule="0 3 * * 1",
        execution_timezone=m.sync.timezone,
        description=f"Reconcile deletes of mapping {m.name!r} every Monday at 03:00 ({m.sync.timezone}). "
        "Stopped by default: its cost (requests, seconds) is in the asset's metadata and in "
        f"`ploomes-cx reconcile {m.name} --dry-run`.",
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
    return job, schedule
