"""Stand-in code locations for `make bench-layouts` (issue 30): Dagster's own cost of three ways
to lay out N mappings, apart from ours.

Each mapping here has the shape ploomes-cx gives one mapping (21 assets: 8 raw extracts, one
staging multi-asset with 6 tables and 10 checks, 4 loads with a cron freshness policy, reconcile,
live and live deletes; a sync, a reconcile and a live job; 2 schedules; a live sensor), with bodies that do nothing, so the figures are Dagster's repository, webserver and run
start, not our code. Read from the environment, so `dagster-webserver -m` and `dagster job
execute -m` load the same thing the benchmark builds:

- `LAYOUT=per_mapping`: one prefixed asset graph per mapping (what ploomes-cx builds today);
- `LAYOUT=shared`: one asset graph for every mapping, partitioned by mapping x window
  (a `MultiPartitionsDefinition`), a schedule per mapping asking for its own partition key;
- `LAYOUT=sharded`: the per-mapping graphs of shard `LAYOUT_SHARD` only, `LAYOUT_SHARD_SIZE`
  mappings a shard, one code location per shard.
"""

from __future__ import annotations

import datetime as dt
import functools
import os

import dagster as dg

RAW = ["organizations", "persons", "deals", "notes", "tasks", "attachments", "dependencies", "fields"]
STAGED = ["clients", "contacts", "contracts", "timeline"]
START = "2025-01-01"  # two years of daily windows by the end of 2026
TIMEZONE = "America/Sao_Paulo"
DAYS = dg.DailyPartitionsDefinition(start_date=START, timezone=TIMEZONE)
FRESH = dg.FreshnessPolicy.cron(deadline_cron="0 9 * * *", lower_bound_delta=dt.timedelta(hours=24))


def mapping_names(count: int) -> list[str]:
    return [f"acct_{i:04d}" for i in range(count)]


def _graph(prefix: list[str], partitions: dg.PartitionsDefinition, pools: str) -> dict[str, list]:
    """One mapping's assets (or the shared graph's, with an empty prefix)."""

    def key(name: str) -> dg.AssetKey:
        return dg.AssetKey([*prefix, name])

    raws = []
    for entity in RAW:

        @dg.asset(key=key(f"raw_{entity}"), partitions_def=partitions, pool=f"{pools}ploomes")
        def _raw() -> None:
            return None

        raws.append(_raw)
    tables = [*(f"stg_{e}" for e in STAGED), "rejected", "duplicate_clusters"]

    @dg.multi_asset(
        name="_".join([*prefix, "staging"]),
        outs={t: dg.AssetOut(key=key(t)) for t in tables},
        deps=[r.key for r in raws],
        check_specs=[dg.AssetCheckSpec(f"check_{i}", asset=key("stg_clients")) for i in range(10)],
    )
    def _staging():  # no annotation: Dagster would read "None" as the type of six outputs
        return None

    loads = []
    for entity in STAGED:

        @dg.asset(
            key=key(f"load_{entity}"),
            deps=[key(f"stg_{entity}")],
            partitions_def=partitions,
            pool=f"{pools}customerx",
            freshness_policy=FRESH,
        )
        def _load() -> None:
            return None

        loads.append(_load)
    others = []
    for name in ("reconcile", "raw_live", "live_deletes"):

        @dg.asset(key=key(name))
        def _other() -> None:
            return None

        others.append(_other)
    return {"synced": [*raws, _staging, *loads], "reconcile": others[:1], "live": others[1:]}


def _jobs(name: str, graph: dict[str, list]) -> tuple[list, list, list]:
    """Jobs, schedules and sensors of one mapping (or of the shared graph, `name` = "all")."""
    sync = dg.define_asset_job(f"{name}_sync", selection=dg.AssetSelection.assets(*graph["synced"]))
    reconcile = dg.define_asset_job(
        f"{name}_reconcile", selection=dg.AssetSelection.assets(*graph["reconcile"])
    )
    live = dg.define_asset_job(f"{name}_live", selection=dg.AssetSelection.assets(*graph["live"]))

    @dg.sensor(name=f"{name}_live_sensor", job=live, minimum_interval_seconds=5)
    def _live_sensor() -> None:
        return None

    reconcile_schedule = dg.ScheduleDefinition(
        name=f"{name}_reconcile_schedule",
        job=reconcile,
        cron_schedule="0 3 * * 0",
        execution_timezone=TIMEZONE,
    )
    return [sync, reconcile, live], [reconcile_schedule], [_live_sensor]


def per_mapping(names: list[str]) -> dg.Definitions:
    parts = []
    for name in names:
        graph = _graph([name], DAYS, f"{name}_")
        jobs, schedules, sensors = _jobs(name, graph)
        sync_schedule = dg.build_schedule_from_partitioned_job(
            jobs[0], name=f"{name}_schedule", minute_of_hour=15
        )
        parts.append(
            dg.Definitions(
                assets=[a for group in graph.values() for a in group],
                jobs=jobs,
                schedules=[sync_schedule, *schedules],
                sensors=sensors,
            )
        )
    return dg.Definitions.merge(*parts)


def shared(names: list[str]) -> dg.Definitions:
    partitions = dg.MultiPartitionsDefinition(
        {"mapping": dg.StaticPartitionsDefinition(names), "window": DAYS}
    )
    graph = _graph([], partitions, "")
    jobs, schedules, sensors = _jobs("all", graph)
    per_name = [_mapping_schedule(name, jobs[0]) for name in names]
    return dg.Definitions(
        assets=[a for group in graph.values() for a in group],
        jobs=jobs,
        schedules=[*per_name, *schedules],
        sensors=sensors,
    )


def _mapping_schedule(name: str, job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    """A schedule per mapping (turned on and off alone), asking for its newest complete window."""

    @dg.schedule(name=f"{name}_schedule", cron_schedule="15 0 * * *", job=job, execution_timezone=TIMEZONE)
    def _tick(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        window = (context.scheduled_execution_time - dt.timedelta(days=1)).strftime("%Y-%m-%d")
        return dg.RunRequest(partition_key=dg.MultiPartitionKey({"mapping": name, "window": window}))

    return _tick


@functools.cache  # Dagster may read a location's attribute more than once
def build(layout: str, count: int, shard: int = 0, shard_size: int = 50) -> dg.Definitions:
    names = mapping_names(count)
    if layout == "per_mapping":
        return per_mapping(names)
    if layout == "shared":
        return shared(names)
    if layout == "sharded":
        return per_mapping(names[shard * shard_size : (shard + 1) * shard_size])
    raise ValueError(f"unknown layout {layout!r}")


def _from_environment() -> dg.Definitions:
    return build(
        os.environ.get("LAYOUT", "per_mapping"),
        int(os.environ.get("LAYOUT_MAPPINGS", "1")),
        int(os.environ.get("LAYOUT_SHARD", "0")),
        int(os.environ.get("LAYOUT_SHARD_SIZE", "50")),
    )


defs = _from_environment() if os.environ.get("LAYOUT") else None


def __getattr__(name: str) -> dg.Definitions:
    """`shard_07`: the seventh shard, so one workspace file can name every shard's code location
    (`attribute: shard_07`) without an environment of its own."""
    if name.startswith("shard_") and name[6:].isdigit():
        return build(
            "sharded",
            int(os.environ.get("LAYOUT_MAPPINGS", "1")),
            int(name[6:]),
            int(os.environ.get("LAYOUT_SHARD_SIZE", "50")),
        )
    raise AttributeError(name)
