"""One mapping file -> one set of Dagster definitions, every name prefixed by the mapping's name."""

from __future__ import annotations

import dagster as dg
from dagster_duckdb import DuckDBResource

from ploomes_cx.assets.load import build_load_assets
from ploomes_cx.assets.raw import build_raw_assets
from ploomes_cx.assets.staging import build_staging_assets
from ploomes_cx.customerx.resource import customerx_resource
from ploomes_cx.home import home
from ploomes_cx.mapping import Mapping
from ploomes_cx.ploomes.resource import ploomes_resource
from ploomes_cx.storage import PloomesCxDuckDBIOManager, database_path


def sync_job_name(m: Mapping) -> str:
    return f"{m.name}_sync"


def build_integration_defs(m: Mapping) -> dg.Definitions:
    assets = [*build_raw_assets(m), *build_staging_assets(m), *build_load_assets(m)]
    database = str(database_path(home(), m.name))
    job = dg.define_asset_job(
        sync_job_name(m),
        selection=dg.AssetSelection.assets(*assets),
        description=f"Sync one window of Ploomes changes into CustomerX for mapping {m.name!r} ({m.source_path}).",
    )
    return dg.Definitions(
        assets=assets,
        jobs=[job],
        resources={
            f"{m.name}_ploomes": ploomes_resource(m),
            f"{m.name}_io_manager": PloomesCxDuckDBIOManager(database=database),
            f"{m.name}_duckdb": DuckDBResource(database=database),
            f"{m.name}_customerx": customerx_resource(m),
        },
    )
