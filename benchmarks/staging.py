"""Clean and deduplicate a million sandbox contacts; prints seconds and peak memory.

Setup (not timed, cached under `$PLOOMES_CX_HOME/bench/`): the sandbox account with N persons
(and N/4 organizations) is written to DuckDB as raw tables, exactly as the raw assets store them.
Measured, in a fresh process: one materialization of the staging multi-asset through Dagster
(normalization, clustering, fuzzy candidates, Pandera contracts, writing every staging table).
Run: `make bench-staging`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from multiprocessing import Pool
from pathlib import Path
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("America/Sao_Paulo")
CHUNK = 50_000
MAPPING = {
    "name": "bench",
    "contracts": {"source": "none"},
    "timeline": [],
    "custom_fields": {
        "clients": [
            {"ploomes": "contact_0A1B2C3D-0000-0000-0000-00000000000A", "customerx": "segmento"},
            {"ploomes": "contact_0A1B2C3D-0000-0000-0000-00000000000B", "customerx": "funcionarios"},
        ]
    },
}
_dataset = None


def _render(args: tuple[int, int, int]) -> list[str]:
    global _dataset
    persons, start, stop = args
    if _dataset is None or _dataset.persons != persons:
        from ploomes_cx.sandbox import PloomesDataset

        _dataset = PloomesDataset(persons=persons)
    return [
        json.dumps(_dataset.render("contacts", i), ensure_ascii=False, separators=(",", ":"))
        for i in range(start, stop)
    ]


def build(path: Path, persons: int) -> None:
    import dagster as dg
    import duckdb

    from ploomes_cx.raw.frames import raw_frame
    from ploomes_cx.sandbox import PloomesDataset

    dataset = PloomesDataset(persons=persons)
    total = len(dataset.tables["contacts"])
    window = dg.TimeWindow(dt.datetime(2026, 10, 1, tzinfo=ZONE), dt.datetime(2026, 12, 1, tzinfo=ZONE))
    tmp = path.with_suffix(".partial")
    tmp.unlink(missing_ok=True)
    started = time.perf_counter()
    with duckdb.connect(str(tmp)) as con, Pool(os.cpu_count() or 2) as pool:
        con.execute("create schema bench")
        jobs = [(persons, a, min(a + CHUNK, total)) for a in range(0, total, CHUNK)]
        for (_, a, _), texts in zip(jobs, pool.imap(_render, jobs), strict=True):
            records = [json.loads(t) for t in texts]
            for entity, type_id in (("organizations", 1), ("persons", 2)):
                frame, _ = raw_frame(
                    [r for r in records if r["TypeId"] == type_id],
                    "LastUpdateDate",
                    window,
                    ZONE,
                    "bench-setup",
                )
                con.register("_rows", frame)
                con.execute(f"create table if not exists bench.raw_{entity} as select * from _rows limit 0")
                con.execute(f"insert into bench.raw_{entity} by name select * from _rows")
                con.unregister("_rows")
            print(f"  setup: {min(a + CHUNK, total):,}/{total:,} contacts written", flush=True)
    tmp.rename(path)
    print(f"setup took {time.perf_counter() - started:.0f}s (cached in {path})")


def write_field_catalogue(path: Path) -> None:
    """The account's `/Fields` as raw_fields holds it: staging types the mapped custom fields by it."""
    import dagster as dg
    import duckdb

    from ploomes_cx.raw.frames import fields_frame
    from ploomes_cx.sandbox.ploomes_fields import fields_catalogue

    window = dg.TimeWindow(dt.datetime(2026, 10, 1, tzinfo=ZONE), dt.datetime(2026, 12, 1, tzinfo=ZONE))
    with duckdb.connect(str(path)) as con:
        con.register("_rows", fields_frame(fields_catalogue(), window, "bench-setup"))
        con.execute("create or replace table bench.raw_fields as select * from _rows")
        con.unregister("_rows")


def measure(path: Path, steps: bool = False) -> None:
    import dagster as dg
    from dagster_duckdb import DuckDBResource

    from benchmarks.memory import peak_rss
    from ploomes_cx.mapping import parse_mapping
    from ploomes_cx.runtime.duckdb_io import PloomesCxDuckDBIOManager
    from ploomes_cx.staging.assets import build_staging_assets

    m = parse_mapping(MAPPING, "benchmarks/staging.py")
    assets = build_staging_assets(m)
    write_field_catalogue(path)
    timer = None
    if steps:
        from benchmarks.steps import StepTimer

        timer = StepTimer()
        timer.install()
    started = time.perf_counter()
    result = dg.materialize(
        assets,
        resources={
            "bench_io_manager": PloomesCxDuckDBIOManager(database=str(path)),
            "bench_duckdb": DuckDBResource(database=str(path)),
        },
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=True,
    )
    seconds = time.perf_counter() - started
    peak = peak_rss()
    for event in result.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        shown = {
            k: v.value
            for k, v in mat.metadata.items()
            if k
            in (
                "extracted",
                "staged",
                "merged",
                "rejected",
                "rejected_records",
                "cleared_fields",
                "merged_clusters",
                "candidate_clusters",
            )
        }
        print(f"  {mat.asset_key.to_user_string():<28} {shown}")
    print(f"seconds          {seconds:.1f}  (target <= 20, issue 14)")
    print(f"peak RSS         {peak / 2**30:.2f} GiB  (target <= 1.5 GiB, issue 14)")
    if timer is not None:
        print("seconds per step:")
        print(timer.report(seconds))


def copy_cache(source: Path, target: Path) -> None:
    """Copies in the kernel, never through this process's memory: a 2.3 GB cache read into
    memory here only to be written out again made this process hold it all at once."""
    shutil.copyfile(source, target)


def _layout() -> str:
    """Names the raw tables' layout in the cache's file name: a cache written with other columns
    would measure another staging, so a new layout builds a new cache."""
    from ploomes_cx.raw.frames import RAW_COLUMNS

    names = ",".join(c.name for c in RAW_COLUMNS.columns)
    return hashlib.sha256(names.encode()).hexdigest()[:8]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--steps", action="store_true", help="also print the seconds of each staging step")
    parser.add_argument("--measure", metavar="DB", help=argparse.SUPPRESS)
    parser.add_argument("--build", metavar="DB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(Path(args.measure), args.steps)
        return
    if args.build:
        build(Path(args.build), args.persons)
        return
    home = Path(os.environ.get("PLOOMES_CX_HOME") or ".ploomes_cx").resolve() / "bench"
    home.mkdir(parents=True, exist_ok=True)
    path = home / f"raw_{args.persons}_{_layout()}.duckdb"
    if not path.exists():
        for stale in [*home.glob(f"raw_{args.persons}_*.duckdb"), home / f"raw_{args.persons}.duckdb"]:
            stale.unlink(missing_ok=True)  # raw tables of an older layout
        # in its own process too: Linux keeps a process's peak RSS across fork and exec, so a
        # measuring process forked from one that built the data would report the builder's peak
        builder = [
            sys.executable,
            "-m",
            "benchmarks.staging",
            "--build",
            str(path),
            "--persons",
            str(args.persons),
        ]
        subprocess.check_call(builder)
    print(
        f"cleaning and deduplicating {args.persons:,} persons + {args.persons // 4:,} organizations "
        f"({os.cpu_count()} cores)"
    )
    work = home / "staging_run.duckdb"
    copy_cache(path, work)  # measure on a copy, so the cached raw tables stay pristine
    measuring = [sys.executable, "-m", "benchmarks.staging", "--measure", str(work)]
    code = subprocess.call(measuring + (["--steps"] if args.steps else []))
    work.unlink(missing_ok=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
