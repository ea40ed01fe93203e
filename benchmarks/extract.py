"""Extraction throughput against the rate-limit ceiling.

Starts the sandbox Ploomes server with its rate limit enforced, extracts every person of a
generated account through the real client over HTTP, and prints achieved records/min as a ratio
of the ceiling (requests per minute x page size). Run: `make bench-extract`.

With `--processes N` the window is split in N parts extracted at once by N processes on the same
key, as parallel backfill runs would: they share one pacing file, so together they should reach
the ceiling and not go over it (no 429). Run: `make bench-parallel`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

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
    parser.add_argument("--processes", type=int, default=1, help="extract in N processes on one key at once")
    parser.add_argument(
        "--separate-pacing",
        action="store_true",
        help="give each process its own pacing file, to see what sharing one prevents",
    )
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
        pacing = str(Path(tmp) / "pace")
        bounds = _equal_parts(dataset, start, end, args.processes)
        parts = [
            (
                server.url,
                server.user_key,
                args.rpm,
                args.page_size,
                f"{pacing}-{i}" if args.separate_pacing else pacing,
                bounds[i],
                bounds[i + 1],
            )
            for i in range(args.processes)
        ]
        t0 = time.perf_counter()
        if args.processes == 1:
            results = [_extract(*parts[0])]
        else:  # spawned, not forked: the server's threads stay in this process
            with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
                results = pool.starmap(_extract, parts)
        seconds = time.perf_counter() - t0
        server_429 = server.rate_limited
    stats = CallStats()
    seen: set[int] = set()
    received = 0
    for ids, part in results:
        seen.update(ids)
        received += len(ids)
        stats.requests += part.requests
        stats.pages += part.pages
        stats.retries += part.retries
        stats.records += part.records

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
    if args.processes > 1:
        sharing = "a pacing file each" if args.separate_pacing else "one shared pacing file"
        print(f"processes        {args.processes} on one key, {sharing}")
    if len(seen) != expected or received != expected:
        raise SystemExit("FAILED: records were lost or repeated")


def _equal_parts(dataset: PloomesDataset, start: dt.datetime, end: dt.datetime, n: int) -> list[dt.datetime]:
    """Window bounds splitting the persons into `n` parts of equal size (change dates cluster)."""
    contacts = dataset.tables["contacts"]
    stamps = np.sort(contacts.cols["LastUpdateDate"][contacts.cols["TypeId"] == 2])
    inner = [
        dt.datetime.fromtimestamp(int(stamps[len(stamps) * i // n]) / 1000, tz=start.tzinfo)
        for i in range(1, n)
    ]
    return [start, *inner, end]


def _extract(
    url: str, key: str, rpm: float, page_size: int, pacing: str, start: dt.datetime, end: dt.datetime
) -> tuple[list[int], CallStats]:
    api = PloomesApi(url, key, requests_per_minute=rpm, page_size=page_size, pacing_file=Path(pacing))
    stats = CallStats()
    ids: list[int] = []
    with api:
        for page in api.iter_window(ENTITIES["persons"], start, end, stats):
            ids.extend(r["Id"] for r in page)
    return ids, stats


if __name__ == "__main__":
    main()
