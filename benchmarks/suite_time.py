"""Where the test suite's time goes (`make bench-suite`), per test and per xdist worker.

Loaded into pytest with `-p benchmarks.suite_time`, it writes one line per test: wall seconds,
the worker's own CPU seconds (its threads included: the sandbox servers run there), the CPU of
the child processes it waited for (CLI subprocesses, the wheel's builds) and when it started.
Each line also counts the Dagster runs the test started in its own process (`ploomes-cx sync`
called in-process). Run as a module, it sums those lines: how long each worker ran and when it
ended (an unbalanced end is a scheduling loss), the runs in all, then the tests that cost the
most CPU, those that started the most runs, and the ones that mostly wait
(sleeps, pacing, retries: time the suite pays without using the cores). Processes a test starts
and does not wait for (the UI's webserver, PostgreSQL) are not counted; their cost shows as waiting.
The machine's own count (`/proc/stat`, every process, the kernel's work included) from the first
test's start to the last one's end gives the whole. Run alone on 2026-12-07, the
PostgreSQL-instance test kept the machine busy 58 CPU-seconds, of which the sum counts 7, and
`test_browser.py` 76, of which it counts 15 (`/proc/stat` read before and after).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FOLDER_ENV = "SUITE_TIME_DIR"
_RUNS = {"count": 0}  # Dagster runs this worker started in-process (`ploomes-cx sync` in a test)


def pytest_configure(config: pytest.Config) -> None:
    """Count the in-process runs each test starts: a run costs about a CPU-second of Dagster's
    bookkeeping whatever it holds (`python -m benchmarks.dagster_floor`), so runs per test are
    what the suite's time is made of. CLI subprocesses and run workers are not counted."""
    if not os.environ.get(FOLDER_ENV):
        return
    from ploomes_cx import runner

    started = runner._Runs.run

    def counted(self: Any, chunk: list[str], layers: tuple[str, ...]) -> Any:
        _RUNS["count"] += 1
        return started(self, chunk, layers)

    runner._Runs.run = counted  # type: ignore[method-assign]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    folder = os.environ.get(FOLDER_ENV)
    wall, cpu, machine = time.perf_counter(), time.process_time(), _machine_busy()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    runs = _RUNS["count"]
    yield
    if not folder:
        return
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = {
        "test": item.nodeid,
        "wall": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "children": (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime),
        "start": wall,  # perf_counter: one clock for every process of the machine (CLOCK_MONOTONIC)
        "machine": (machine, _machine_busy()),  # the machine's busy CPU when it started and ended
        "runs": _RUNS["count"] - runs,
    }
    Path(folder).mkdir(parents=True, exist_ok=True)
    with (Path(folder) / f"{os.getpid()}.jsonl").open("a") as out:
        out.write(json.dumps(line) + "\n")


def _machine_busy() -> float | None:
    """CPU-seconds every core of this machine has spent busy since boot (None off Linux); time
    the hypervisor gave other machines (`steal`) is not ours and not counted."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:8]]
        user, nice, system, _idle, _iowait, irq, softirq = fields
    except (OSError, ValueError):
        return None
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _rows(folder: Path) -> list[dict[str, Any]]:
    rows = []
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            rows.append(json.loads(line) | {"worker": path.stem})
    return rows


def report(folder: Path, top: int) -> None:
    rows = _rows(folder)
    if not rows:
        raise SystemExit(
            f"no timings in {folder}: run pytest with -p benchmarks.suite_time and ${FOLDER_ENV}"
        )
    origin = min(r["start"] for r in rows)
    workers: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        workers[r["worker"]].append(r)
    print(f"{len(rows)} tests; seconds of wall, own CPU, children's CPU; when each worker ended")
    for name, mine in sorted(workers.items()):
        end = max(r["start"] + r["wall"] for r in mine) - origin
        sums = [sum(r[k] for r in mine) for k in ("wall", "cpu", "children")]
        print(
            f"  worker {name}: {len(mine)} tests, wall {sums[0]:.0f}, cpu {sums[1]:.0f} + {sums[2]:.0f}, end {end:.0f}"
        )
    cpu = sum(r["cpu"] + r["children"] for r in rows)
    print(f"  CPU in all: {cpu:.0f} s, {cpu / 2:.0f} s of wall on 2 cores at best")
    busy = _machine_span(rows)
    if busy is not None:
        print(f"  the machine's busy CPU from the first test's start to the last one's end: {busy:.0f} s")
    runs = sum(r.get("runs", 0) for r in rows)
    print(f"  Dagster runs started in the tests' own processes: {runs}")
    print("\nmost CPU (own + children), seconds: cpu, wall, runs")
    for r in sorted(rows, key=lambda r: -(r["cpu"] + r["children"]))[:top]:
        print(f"  {r['cpu'] + r['children']:6.1f} {r['wall']:6.1f} {r.get('runs', 0):3d}  {r['test']}")
    print("\nmost runs: runs, cpu")
    for r in sorted(rows, key=lambda r: -r.get("runs", 0))[:top]:
        print(f"  {r.get('runs', 0):3d} {r['cpu'] + r['children']:6.1f}  {r['test']}")
    print("\nmost waiting (wall - CPU; also CPU of processes not waited for), seconds: waiting, wall")
    for r in sorted(rows, key=lambda r: -(r["wall"] - r["cpu"] - r["children"]))[:top]:
        print(f"  {r['wall'] - r['cpu'] - r['children']:6.1f} {r['wall']:6.1f}  {r['test']}")


def _machine_span(rows: list[dict[str, Any]]) -> float | None:
    """Busy CPU-seconds from the first test's start to the last one's end (None: not recorded)."""
    marks = [r["machine"] for r in rows if r.get("machine") and None not in r["machine"]]
    return max(end for _, end in marks) - min(start for start, _ in marks) if marks else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help=f"the folder ${FOLDER_ENV} named for pytest")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    report(args.folder, args.top)


if __name__ == "__main__":
    main()
