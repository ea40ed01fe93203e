"""Extraction throughput against the rate-limit ceiling.

Starts the sandbox Ploomes server with its rate limit enforced, extracts every person of a
generated account through the real client over HTTP, and prints achieved records/min as a ratio
of the ceiling (requests per minute x page size). Run: `make bench-extract`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from ploomes_cx.ploomes.client import CallStats, PloomesApi
from ploomes_cx.ploomes.entities import ENTITIES
from ploomes_cx.sandbox import PloomesDataset, PloomesSandbox


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument(
        "--rpm", type=float, default=120, help="limit the server enforces and the client paces to"
    )
    parser.add_argument("--page-size", type=int, default=300)
    args = parser.parse_args()

    started = time.perf_counter()
    dataset = PloomesDataset(persons=args.persons)
    print(f"generated {args.persons:,} persons in {time.perf_counter() - started:.1f}s")
    zone = ZoneInfo("America/Sao_Paulo")
    start = dt.datetime(2026, 10, 1, tzinfo=zone)  # one window holding the whole dataset
    end = dt.datetime(2026, 12, 1, tzinfo=zone)
    expected = len(dataset.expected_ids("persons", start, end))
    with (
        PloomesSandbox(dataset, requests_per_minute=args.rpm) as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        api = PloomesApi(
            server.url,
            server.user_key,
            requests_per_minute=args.rpm,
            page_size=args.page_size,
            pacing_file=Path(tmp) / "pace",
        )
        stats = CallStats()
        seen: set[int] = set()
        t0 = time.perf_counter()
        with api:
            for page in api.iter_window(ENTITIES["persons"], start, end, stats):
                seen.update(r["Id"] for r in page)
        seconds = time.perf_counter() - t0
        server_429 = server.rate_limited

    per_minute = len(seen) / (seconds / 60)
    ceiling = args.rpm * args.page_size
    print(f"records          {len(seen):,} unique of {expected:,} expected ({stats.records:,} received)")
    print(
        f"requests         {stats.requests} ({stats.pages} pages, {stats.retries} retries, {server_429} answered 429)"
    )
    print(f"elapsed          {seconds:.1f} s")
    print(f"achieved         {per_minute:,.0f} records/min")
    print(
        f"ceiling          {ceiling:,.0f} records/min ({args.rpm:g} requests/min x {args.page_size} per page)"
    )
    print(f"ratio            {per_minute / ceiling:.3f}  (target >= 0.95)")
    if len(seen) != expected:
        raise SystemExit("FAILED: records were lost or repeated")


if __name__ == "__main__":
    main()
