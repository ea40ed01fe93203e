"""One mapping file -> one set of Dagster definitions, every name prefixed by the mapping's name."""

from __future__ import annotations

import dagster as dg

from ploomes_cx.alerts.sensors import build_alert_sensors
from ploomes_cx.code_refs import with_mapping_references
from ploomes_cx.customerx.resource import customerx_resource
from ploomes_cx.live.assets import build_live_asset, build_live_deletes_asset, build_live_job
from ploomes_cx.live.sensor import build_live_sensor
from ploomes_cx.load.assets import build_load_assets
from ploomes_cx.mapping import Mapping
from ploomes_cx.plan import Plan
from ploomes_cx.ploomes.resource import ploomes_resource
from ploomes_cx.raw.assets import build_raw_assets
from ploomes_cx.raw.dependencies import build_dependencies_asset
from ploomes_cx.reconcile.assets import build_reconcile_asset, build_reconcile_job
from ploomes_cx.runtime import claim_wait
from ploomes_cx.runtime.duckdb_io import PloomesCxDuckDBIOManager, PloomesCxDuckDBResource, database_path
from ploomes_cx.runtime.state import home
from ploomes_cx.staging.assets import build_staging_assets

MAPPING_TAG = "ploomes_cx/mapping"
LAYER_TAG = "ploomes_cx/layer"  # raw, staging, load or live: what a run over some layers selects by

# every process that runs our jobs builds them here first (CLI, run workers, the live worker)
claim_wait.install()


def build_sync_schedule(m: Mapping, job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    """One tick per window, shortly after the window ends, asking for that (newest complete) window.

    Stopped until someone turns it on (UI: Automation, or `dagster schedule start`), so adding a
    mapping file never starts calling production APIs by itself. The cron runs in the mapping's
    timezone, the same zone the partitions are cut in.
    """
    delay = m.sync.schedule_delay_minutes
    return dg.build_schedule_from_partitioned_job(
        job,
        name=Plan.of(m).schedule,
        description=f"Syncs each {m.sync.cadence} window of mapping {m.name!r} {delay} min after it ends "
        f"({m.sync.timezone}). Stopped by default: start it in the UI or with `dagster schedule start`.",
        minute_of_hour=delay,
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )


def build_integration_defs(m: Mapping) -> dg.Definitions:
    dependencies = build_dependencies_asset(m)
    raw = build_raw_assets(m) + ([dependencies] if dependencies else [])
    reconcile = build_reconcile_asset(m)
    layers = {
        "raw": raw,
        "staging": build_staging_assets(m),
        "load": [*build_load_assets(m), reconcile],
        "live": [build_live_asset(m), build_live_deletes_asset(m)],
    }
    assets = [
        asset
        for layer, built in layers.items()
        for asset in dg.map_asset_specs(
            lambda spec, layer=layer: spec.merge_attributes(
                owners=m.owners, tags={MAPPING_TAG: m.name, LAYER_TAG: layer}
            ),
            built,
        )
    ]
    assets = with_mapping_references(m, assets)  # the UI's "Source code": the mapping file, not defs.yaml
    plan = Plan.of(m)
    database = str(database_path(home(), m.name))
    synced = [a for a in assets if not a.keys & {plan.reconcile_key, plan.live_key, plan.live_deletes_key}]
    reconcile_job, reconcile_schedule = build_reconcile_job(
        m, next(a for a in assets if plan.reconcile_key in a.keys), {MAPPING_TAG: m.name}
    )
    job = dg.define_asset_job(
        plan.job,
        selection=dg.AssetSelection.assets(*synced),
        description=f"Sync one window of Ploomes changes into CustomerX for mapping {m.name!r} ({m.source_path}).",
        # The instance's run queue allows one in-progress run per value of this tag (see runtime/state.py),
        # so a backfill's runs of one mapping load one after another.
        tags={MAPPING_TAG: m.name},
        # Steps run one after another in the run's own process, as with the CLI: the API steps
        # queue on their pools anyway, and a subprocess per step cost 2-3 s each (about 30 s a
        # window for a dozen steps, measured with the backfill test).
        executor_def=dg.in_process_executor,
    )
    live_job = build_live_job(m, {MAPPING_TAG: m.name})
    return dg.Definitions(
        assets=assets,
        jobs=[job, reconcile_job, live_job],
        sensors=[
            build_live_sensor(m, live_job),
            *build_alert_sensors(
                m, assets, {plan.job: "sync", plan.reconcile_job: "reconcile", plan.live_job: "live"}
            ),
        ],
        schedules=[build_sync_schedule(m, job), reconcile_schedule],
        resources={
            plan.ploomes_resource: ploomes_resource(m),
            plan.io_manager: PloomesCxDuckDBIOManager(database=database),
            plan.duckdb_resource: PloomesCxDuckDBResource(database=database),
            plan.customerx_resource: customerx_resource(m),
        },
    )
