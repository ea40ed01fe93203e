"""Load layer: one asset per CustomerX entity, in dependency order (clients before the rest).

Each reads its staging table and makes CustomerX hold it (`load/loop.py`): unchanged
records cost no call, the crosswalk follows the records that land (`ledger.Crosswalk`), every
outcome goes to the ledger. With `dry_run: true` in the run config (or `ploomes-cx sync
--dry-run`) nothing is written to CustomerX and the metadata shows what would change.
"""

from collections import Counter
from typing import Any

import dagster as dg
import pandas as pd
from dagster import AssetExecutionContext
from dagster_duckdb import DuckDBResource

from ploomes_cx.customerx.client import CustomerXAuthError, CustomerXUnavailableError
from ploomes_cx.customerx.resource import CustomerXResource
from ploomes_cx.load import ledger
from ploomes_cx.load.loop import EntityLoad, LoadOptions, LoadReport
from ploomes_cx.load.merges import retire, would_settle
from ploomes_cx.mapping import Mapping
from ploomes_cx.metadata import Count, ErrorKind, failure, markdown
from ploomes_cx.partitions import freshness_policy
from ploomes_cx.plan import Plan
from ploomes_cx.runtime.duckdb_io import connection

DESCRIPTIONS = {
    "clients": "Clients in CustomerX, upserted by external id (the survivor's Ploomes id), adopting an existing "
    "client that matches by the mapping's identifiers instead of creating a second one.",
    "contacts": "Contacts in CustomerX, each on its client; contacts without e-mail are rejected before any call.",
    "contracts": "Contracts in CustomerX: won deals or their product lines.",
    "timeline": "Timeline entries in CustomerX (notes, activities, attachments), each posted once, ever.",
}


CROSSWALK_COLUMNS = dg.TableSchema(
    columns=[
        dg.TableColumn(
            "external_id", "varchar", description="The record's id on our side (Ploomes survivor id)"
        ),
        dg.TableColumn("customerx_id", "bigint", description="CustomerX's id of the record"),
        dg.TableColumn(
            "content_hash", "varchar", description="Hash of the body last sent; equal means no call"
        ),
        dg.TableColumn("state", "varchar", description="sent, or pending while a create is in flight"),
        dg.TableColumn("updated_at", "timestamp", description="When the row last changed, UTC"),
        dg.TableColumn("run_id", "varchar", description="Dagster run that last wrote it"),
    ]
)


class LoadConfig(dg.Config):
    dry_run: bool = False
    # Set by `ploomes-cx sync` to one id for all its windows: a record CustomerX refused is sent
    # again once per sync, not once per window. Empty (UI runs): every run tries it again.
    sync_id: str = ""


def _load_asset(m: Mapping, entity: str) -> dg.AssetsDefinition:
    plan = Plan.of(m)
    cx_key, duck_key = plan.customerx_resource, plan.duckdb_resource
    deps = [plan.staging_key(entity)] + ([plan.load_key("clients")] if entity != "clients" else [])

    @dg.asset(
        key=plan.load_key(entity),
        group_name=plan.group("load"),
        kinds={"customerx", "duckdb"},
        deps=deps,
        required_resource_keys={cx_key, duck_key},
        pool=plan.customerx_pool,
        description=DESCRIPTIONS[entity]
        + f"\n\nIts rows are the `{m.name}.crosswalk` rows of this entity: one per record CustomerX holds "
        f"from us. Every call's outcome is in `{m.name}.ledger`.",
        metadata={"dagster/column_schema": CROSSWALK_COLUMNS},
        freshness_policy=freshness_policy(m),
    )
    def _load(context: AssetExecutionContext, config: LoadConfig) -> dg.MaterializeResult:
        duck: DuckDBResource = getattr(context.resources, duck_key)
        resource: CustomerXResource = getattr(context.resources, cx_key)
        # the account's lock before the DuckDB file: every step takes them in this order
        with resource.one_step_at_a_time(context.log), connection(duck) as con:
            frame = con.execute(f"select * from {m.name}.{plan.table(entity)} order by external_id").fetchdf()
            api = resource.api(context.log)
            try:
                options = LoadOptions(dry_run=config.dry_run, sync_id=config.sync_id)
                report = EntityLoad(m, entity, api, con, context.run_id, options).run(frame, context.log)
                # a client merged into another once both were in CustomerX: settled by the step that
                # moved its last record (load/merges.py)
                if not config.dry_run:
                    settled = retire(m, api, con, context.run_id, report.stats)
                else:  # told once, by the clients' step
                    settled = would_settle(m, con) if entity == "clients" else Counter()
            except (CustomerXAuthError, CustomerXUnavailableError) as exc:
                raise failure(str(exc), ErrorKind.CUSTOMERX) from None
            finally:
                api.close()
            held = ledger.held(con, m.name, entity)
            outcomes = ledger.run_outcomes(con, m.name, entity, context.run_id, limit=10)
        metadata = _metadata(entity, config.dry_run, report, settled)
        metadata |= {"dagster/row_count": held, "preview": markdown(outcomes, limit=10)}
        return dg.MaterializeResult(metadata=metadata)

    return _load


def _metadata(entity: str, dry_run: bool, report: LoadReport, settled: Counter) -> dict[str, Any]:
    """What the UI shows of one load: counts, cost, and the samples worth a look."""
    metadata: dict[str, Any] = {
        "dry_run": dry_run,
        **_count_metadata(report.counts),
        "requests": report.stats.requests,
        "writes": report.stats.writes,
        "retries": report.stats.retries,
        "summary": dg.MetadataValue.md(_summary(entity, report.counts, dry_run)),
    }
    if report.refusals:
        metadata["refusals"] = markdown(pd.DataFrame(report.refusals))
    if report.diffs:
        metadata["changes_sample"] = dg.MetadataValue.json(report.diffs)
    if settled:  # merged-away clients, per deletes.policy (their rows in the ledger, entity clients)
        metadata["merged_away_clients"] = dg.MetadataValue.json(dict(settled))
    if report.adoption:  # how new records were matched with CustomerX's, and what it cost
        metadata["adoption"] = dg.MetadataValue.json(report.adoption)
    return metadata


def _count_metadata(counts: Counter) -> dict[str, int]:
    """The load's outcomes as the shared `Count` keys (a dry run's would-be writes count as writes),
    then the detail of what did not land."""
    return {
        Count.CREATED.value: counts["created"] + counts["would_create"],
        Count.UPDATED.value: counts["updated"]
        + counts["adopted"]
        + counts["would_update"]
        + counts["cancelled"]
        + counts["reactivated"]
        + counts["moved"]
        + counts["would_move"]
        + counts["would_cancel"],
        "adopted": counts["adopted"],
        Count.UNCHANGED.value: counts["unchanged"],
        Count.FAILED.value: counts["rejected"] + counts["failed"] + counts["waiting_for_client"],
        "rejected_by_customerx": counts["rejected"],
        "failed_after_retries": counts["failed"],
        "waiting_for_client": counts["waiting_for_client"],
        # contracts whose deal left won (§4.2), and deals won again
        "cancelled": counts["cancelled"] + counts["would_cancel"],
        "left_won_kept": counts["left_won"] + counts["would_keep"],
        "reactivated": counts["reactivated"],
        # held under a client merged into theirs, now on the survivor (load/merges.py)
        "moved": counts["moved"] + counts["would_move"],
    }


def _summary(entity: str, counts: dict[str, int], dry_run: bool) -> str:
    if dry_run:
        return (
            f"Dry run, nothing written: {counts['would_create']} {entity} would be created, "
            f"{counts['would_update']} updated, {counts['would_move']} moved to the client theirs was merged "
            f"into, {counts['unchanged']} left unchanged."
        )
    return (
        f"{counts['created']} created, {counts['updated']} updated, {counts['adopted']} adopted, "
        f"{counts['moved']} moved to the client theirs was merged into, "
        f"{counts['unchanged']} unchanged, {counts['rejected']} refused, {counts['failed']} failed after retries, "
        f"{counts['waiting_for_client']} waiting for their client."
    )


def build_load_assets(m: Mapping) -> list[dg.AssetsDefinition]:
    return [_load_asset(m, e) for e in Plan.of(m).staged]
