"""What a `ploomes-cx sync` costs whatever its window holds: CPU-seconds per sync, imports excluded.

Runs the same small sync again and again in one process, each time into a fresh state folder and
a fresh CustomerX sandbox (the first sync of an account, as most tests make), after one warm-up
sync that pays the imports. The process's CPU includes both sandbox servers, which run as its
threads, as they do in the tests, and the child processes each run starts (Dagster's compute-log
tails). Most end-to-end tests are a few of these syncs, so this is the
unit the test suite's time is made of (`make bench-suite`). With `--persons 10` a window holds
almost nothing: what is left is Dagster's run machinery, its event storage and the fixed queries
of each step; profile it with `py-spy record -- python -m benchmarks.overhead`.

Run: `make bench-overhead` (`python -m benchmarks.overhead --persons 10 --windows 1 --repeat 5`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from ploomes_cx.cli import main as cli
from ploomes_cx.sandbox import CustomerXSandbox, PloomesDataset, PloomesSandbox
from ploomes_cx_tests.conftest import CX_TOKEN, SECRET_KEY, write_mapping

# the tests' own mapping (`write_mapping`): what this measures is the unit their syncs are made of
LOOSE = "quality:\n  max_rejected_ratio: 0.9\n"


def _children_cpu() -> float:
    """CPU-seconds of the child processes that ended and were waited for."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def one_sync(ploomes: PloomesSandbox, folder: Path, window: str) -> tuple[float, float, int]:
    """(wall, CPU seconds, CustomerX writes) of one first sync of `window` into `folder`."""
    home = folder / "state"
    os.environ.update(
        PLOOMES_CX_HOME=str(home),
        PLOOMES_BASE_URL=ploomes.url,
        PLOOMES_USER_KEY=SECRET_KEY,
        CUSTOMERX_TOKEN=CX_TOKEN,
    )
    os.environ.pop("DAGSTER_HOME", None)
    folder.mkdir(parents=True)
    mapping = write_mapping(folder, "overhead", LOOSE)
    with CustomerXSandbox(token=CX_TOKEN, requests_per_minute=60_000, burst=1000) as cx:
        os.environ["CUSTOMERX_BASE_URL"] = cx.url
        wall, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli(["sync", str(mapping), "--window", window, "--quiet"])
        wall = time.perf_counter() - wall
        cpu = time.process_time() - cpu + _children_cpu() - children
        if code != 0:
            raise SystemExit(f"the sync exited {code}")
        return wall, cpu, len(cx.writes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=10, help="size of the sandbox account")
    parser.add_argument(
        "--windows", type=int, default=1, choices=range(1, 14), help="daily windows from 2026-11-02"
    )
    parser.add_argument("--repeat", type=int, default=5, help="measured syncs, after one warm-up")
    args = parser.parse_args()
    last = 1 + args.windows
    window = "2026-11-02" if args.windows == 1 else f"2026-11-02..2026-11-{last:02d}"
    dataset = PloomesDataset(persons=args.persons, seed=7)
    memory = "/dev/shm" if Path("/dev/shm").is_dir() else None  # as the tests' folders (conftest.py)
    with (
        PloomesSandbox(dataset, user_key=SECRET_KEY, requests_per_minute=60_000, burst=1000) as ploomes,
        tempfile.TemporaryDirectory(dir=memory) as tmp,
    ):
        one_sync(ploomes, Path(tmp) / "warm-up", window)
        runs = [one_sync(ploomes, Path(tmp) / f"sync-{i}", window) for i in range(args.repeat)]
    walls, cpus = [r[0] for r in runs], [r[1] for r in runs]
    print(
        f"sync of {args.windows} window(s), {args.persons} persons, {runs[0][2]} CustomerX writes, "
        f"{args.repeat} times after a warm-up: CPU {statistics.median(cpus):.2f} s "
        f"(min {min(cpus):.2f}), wall {statistics.median(walls):.2f} s, medians"
    )


if __name__ == "__main__":
    main()
