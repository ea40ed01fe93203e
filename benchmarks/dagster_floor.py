"""What Dagster's own bookkeeping costs a run, whatever the assets do: CPU-seconds per run.

A partitioned job of empty assets, run in-process on a SQLite instance (as `ploomes-cx sync`
runs, with Dagster's own storage rather than ours), in the shapes a sync's job could take:
  - `steps`: 13 assets, one step each (a sync of the tests' mapping runs 13 steps);
  - `multi`: the same 13 assets, 8 of them made by one multi-asset step (a raw layer in one step);
  - `checks`: the 13 steps, each asset with one check evaluated in its step;
  - `logs`: the 13 steps, each logging two lines (`context.log.info`).
Each shape runs a warm-up run, then `--repeat` runs of new partitions; the median CPU is printed,
with each shape's difference from `steps`. It tells where a small sync's CPU goes (make
bench-overhead measures the whole sync) and what a change of the job's shape would save.

Run: `python -m benchmarks.dagster_floor` (about a minute).
"""

import argparse
import statistics
import tempfile
import time
from collections.abc import Iterator

import dagster as dg
from dagster import AssetExecutionContext

PARTITIONS = dg.DailyPartitionsDefinition(start_date="2026-01-01")
RAW = [f"raw_{i}" for i in range(8)]
SHAPES = ("steps", "multi", "checks", "logs")
# the console quiet, as `ploomes-cx sync` runs it (`runner.run_config`): log lines are still stored
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def _raw_assets(shape: str) -> list[dg.AssetsDefinition]:
    if shape == "multi":

        @dg.multi_asset(specs=[dg.AssetSpec(n, partitions_def=PARTITIONS) for n in RAW], can_subset=True)
        def raw(context: AssetExecutionContext) -> Iterator[dg.MaterializeResult]:
            for key in sorted(context.selected_asset_keys):
                yield dg.MaterializeResult(asset_key=key, metadata={"rows": 1})

        return [raw]
    return [_one(name, [], shape) for name in RAW]


def _one(name: str, deps: list[str], shape: str) -> dg.AssetsDefinition:
    specs = [dg.AssetCheckSpec("rows", asset=name)] if shape == "checks" else []

    @dg.asset(name=name, partitions_def=PARTITIONS, deps=deps, check_specs=specs)
    def _asset(context: AssetExecutionContext) -> Iterator[dg.MaterializeResult]:
        if shape == "logs":
            context.log.info("first line")
            context.log.info("second line")
        checks = [dg.AssetCheckResult(passed=True)] if specs else None
        yield dg.MaterializeResult(metadata={"rows": 1}, check_results=checks)

    return _asset


def job_of(shape: str) -> dg.JobDefinition:
    assets, upstream = _raw_assets(shape), RAW
    for i in range(5):  # staging and the four loads, one after another
        assets.append(_one(f"next_{i}", upstream, shape))
        upstream = [f"next_{i}"]
    defs = dg.Definitions(
        assets=assets, jobs=[dg.define_asset_job("sync", selection=dg.AssetSelection.all())]
    )
    return defs.resolve_job_def("sync")


def measure(shape: str, repeat: int) -> float:
    """Median CPU-seconds of one run of `shape`, after a warm-up run."""
    job = job_of(shape)
    with tempfile.TemporaryDirectory() as folder:
        instance = dg.DagsterInstance.local_temp(folder)
        job.execute_in_process(instance=instance, partition_key="2026-01-01", run_config=QUIET)
        cpus = []
        for day in range(repeat):
            started = time.process_time()
            job.execute_in_process(
                instance=instance, partition_key=f"2026-02-{day + 1:02d}", run_config=QUIET
            )
            cpus.append(time.process_time() - started)
        instance.dispose()
    return statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9, help="measured runs of each shape")
    args = parser.parse_args()
    cost = {shape: measure(shape, args.repeat) for shape in SHAPES}
    for shape in SHAPES:
        delta = cost[shape] - cost["steps"]
        print(f"{shape:7s} {cost[shape]:.3f} CPU-s a run ({delta:+.3f} against 13 steps)")
    print(
        f"per step {cost['steps'] / 13 * 1000:.0f} ms; per check {(cost['checks'] - cost['steps']) / 13 * 1000:.0f} ms; "
        f"per log line {(cost['logs'] - cost['steps']) / 26 * 1000:.1f} ms (medians of {args.repeat} runs)"
    )


if __name__ == "__main__":
    main()
