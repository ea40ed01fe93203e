"""A first sync of a multi-window dirty account at enforced rate limits, against its floor.

Starts both sandbox servers with their limits enforced (Ploomes 120 requests/min, CustomerX 60,
both multiplied by --speedup so the run takes minutes instead of the hour the real limits
would; the ratios below do not depend on it, except that Dagster's fixed seconds per run weigh
more at a higher speed-up), and runs `ploomes-cx sync` over --windows daily windows from the
history window on, as a new user would: a fresh state folder, an empty CustomerX account.
Prints:
- writes per needed write: CustomerX writes / records CustomerX had to receive (target 1.000);
- CustomerX requests per needed write, listings included (target <= 1.01);
- run time / floor. The floor is the time the minimal request counts take at the limits: the
  Ploomes pages (per raw table, its rows / page size rounded up; the catalogue; the parents by
  Id, 100 per request) plus one CustomerX request per needed write. It is given twice: with the
  two APIs one after the other (a load needs its staging: the floor of one pass), and
  overlapped (the larger of the two alone: the floor no schedule can beat).
Run: `make bench-sync`.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb

from ploomes_cx.cli import main as cli
from ploomes_cx.runtime.duckdb_io import database_path
from ploomes_cx.sandbox import CustomerXSandbox, PloomesDataset, PloomesSandbox

PLOOMES_RPM, CUSTOMERX_RPM, PAGE, IDS_PER_REQUEST = 120, 60, 300, 100

MAPPING = """\
name: bench
ploomes:
  requests_per_minute: {ploomes_rpm}
customerx:
  requests_per_minute: {customerx_rpm}
sync:
  start: "2026-11-01"
  windows_per_run: {windows_per_run}
quality:
  max_rejected_ratio: 0.9
"""


def identity(resource: str, body: dict[str, Any]) -> tuple:
    """Which record a write is about: its external id; a timeline entry has none, so its content."""
    if resource == "timelines":
        return (resource, body.get("external_id_client"), body.get("title"), body.get("created_at"))
    return (resource, body.get(f"external_id_{resource[:-1]}"))


def minimal_ploomes_requests(home: Path) -> int:
    """Pages a one-pass extraction of what this sync stored cannot go below."""
    with duckdb.connect(str(database_path(home, "bench")), read_only=True) as con:
        tables = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'bench' "
                "and table_name like 'raw_%' and table_name not in ('raw_fields', 'raw_dependencies')"
            ).fetchall()
        ]
        pages = sum(
            max(1, math.ceil(con.execute(f"select count(*) from bench.{t}").fetchone()[0] / PAGE))
            for t in tables
        )
        parents = con.execute("select entity, count(*) from bench.raw_dependencies group by 1").fetchall()
    return 1 + pages + sum(math.ceil(n / IDS_PER_REQUEST) for _, n in parents)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--persons", type=int, default=1200, help="size of the sandbox account")
    parser.add_argument("--windows", type=int, default=7, help="daily windows, from 2026-11-01 (history)")
    parser.add_argument("--speedup", type=float, default=10, help="both rate limits multiplied by this")
    parser.add_argument(
        "--windows-per-run",
        type=int,
        default=31,
        help="the mapping's sync.windows_per_run: fewer than --windows runs the range in chunks, each "
        "chunk's extraction beside the previous chunk's load",
    )
    args = parser.parse_args()
    p_rpm, c_rpm = PLOOMES_RPM * args.speedup, CUSTOMERX_RPM * args.speedup
    dataset = PloomesDataset(persons=args.persons, seed=7)
    with (
        tempfile.TemporaryDirectory() as tmp,
        PloomesSandbox(dataset, requests_per_minute=p_rpm) as ploomes,
        CustomerXSandbox(requests_per_minute=c_rpm) as customerx,
    ):
        home = Path(tmp) / "state"
        mapping = Path(tmp) / "bench.yaml"
        mapping.write_text(
            MAPPING.format(ploomes_rpm=p_rpm, customerx_rpm=c_rpm, windows_per_run=args.windows_per_run)
        )
        os.environ.update(
            PLOOMES_CX_HOME=str(home),
            PLOOMES_BASE_URL=ploomes.url,
            PLOOMES_USER_KEY=ploomes.user_key,
            CUSTOMERX_BASE_URL=customerx.url,
            CUSTOMERX_TOKEN=customerx.token,
        )
        os.environ.pop("DAGSTER_HOME", None)
        window = f"2026-11-01..2026-11-{args.windows:02d}"
        started = time.perf_counter()
        code = cli(["sync", str(mapping), "--window", window, "--quiet"])
        seconds = time.perf_counter() - started
        writes = [w for w in customerx.writes if w["status"] < 300]
        needed = len(Counter(identity(w["path"].split("?")[0].rsplit("/", 1)[-1], w["body"]) for w in writes))
        cx_requests = len(customerx.requests)
        p_requests = len(ploomes.requests)
        p_floor_requests = minimal_ploomes_requests(home)
    p_floor, c_floor = p_floor_requests / p_rpm * 60, needed / c_rpm * 60
    runs = math.ceil(args.windows / args.windows_per_run)
    print(
        f"\nsync exit code {code}; {args.persons:,} persons, {args.windows} daily windows ({window}), {runs} chunk(s)"
    )
    print(f"limits: Ploomes {p_rpm:g}/min, CustomerX {c_rpm:g}/min (x{args.speedup:g} the real ones)")
    print(f"CustomerX: {needed:,} records needed, {len(writes):,} writes, {cx_requests:,} requests")
    print(f"  writes per needed write:   {len(writes) / needed:.3f}  (target 1.000)")
    print(f"  requests per needed write: {cx_requests / needed:.3f}  (target <= 1.01)")
    print(f"Ploomes: {p_requests:,} requests, {p_floor_requests:,} at least")
    print(
        f"run time {seconds:.1f}s; floor {p_floor + c_floor:.1f}s one after the other, {max(p_floor, c_floor):.1f}s overlapped"
    )
    print(
        f"  run time / floor: {seconds / (p_floor + c_floor):.2f} (one pass), {seconds / max(p_floor, c_floor):.2f} (overlapped)"
    )
    real = (p_floor + c_floor) * args.speedup / 60
    print(f"at the real limits its floor (one pass) is {real:.0f} min")


if __name__ == "__main__":
    main()
