"""Writes per changed record, and the write rate against the CustomerX rate-limit ceiling.

Loads two sandbox windows into the CustomerX sandbox (fast, not measured), then changes N
organizations in Ploomes, re-syncs their window through Dagster with the CustomerX sandbox
enforcing its real limit (60 requests/min by default) and the mapping pacing to it, and prints
how many writes each changed record cost (target 1.00) and the achieved write rate as a ratio of
the ceiling (target >= 0.95). Run: `make bench-load`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import textwrap
import time
from pathlib import Path

import duckdb

from ploomes_cx.mapping import load_mapping
from ploomes_cx.runner import run_windows
from ploomes_cx.runtime.duckdb_io import database_path
from ploomes_cx.sandbox import CustomerXSandbox, PloomesDataset, PloomesSandbox, sandbox_env
from ploomes_cx.sandbox.clock import ACCOUNT_TZ, to_ms


def mapping_file(folder: Path, rpm: int) -> Path:
    path = folder / f"bench_{rpm}.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        name: benchload
        ploomes:
          requests_per_minute: 6000
        customerx:
          requests_per_minute: {rpm}
        sync:
          start: "2026-11-01"
        contracts:
          source: none
        timeline: []
        quality:
          max_rejected_ratio: 1
        """)
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--changes", type=int, default=60, help="organizations to change in Ploomes")
    parser.add_argument("--rpm", type=int, default=60, help="CustomerX limit, enforced by the sandbox")
    args = parser.parse_args()
    import datetime as dt

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["PLOOMES_CX_HOME"] = str(folder / "state")
        os.environ.pop("DAGSTER_HOME", None)
        fast, slow = load_mapping(mapping_file(folder, 6000)), load_mapping(mapping_file(folder, args.rpm))
        with (
            PloomesSandbox(PloomesDataset(persons=4000), requests_per_minute=60_000, burst=1000) as ploomes,
            CustomerXSandbox(requests_per_minute=60_000, burst=1000) as cx,
        ):
            os.environ.update(sandbox_env(fast, ploomes, cx))
            assert all(r.success for r in run_windows(fast, ["2026-11-02", "2026-11-03"]))
            with duckdb.connect(str(database_path(folder / "state", "benchload")), read_only=True) as con:
                ids = [
                    int(r[0])
                    for r in con.execute(
                        "select external_id from benchload.stg_clients order by external_id"
                    ).fetchall()
                ]
            changed = ids[: args.changes]
            when = to_ms(dt.datetime(2026, 11, 3, 12, tzinfo=ACCOUNT_TZ))
            for n, client in enumerate(changed):
                ploomes.dataset.touch(
                    "contacts", client, {"Name": f"Empresa Renomeada {n} Ltda"}, when_ms=when
                )
            cx.set_rate_limit(args.rpm, burst=5)
            before = len(cx.writes)
            started = time.perf_counter()
            result = run_windows(slow, ["2026-11-03"])[0]
            seconds = time.perf_counter() - started
            assert result.success, result.errors
            writes = cx.writes[before:]
            stamps = [t for t, method, _ in cx.requests if method != "GET"][-len(writes) :] if writes else []
            span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
            per_minute = (len(stamps) - 1) / span * 60 if span else 0.0
            print(f"changed records      {len(changed)} organizations (renamed in Ploomes)")
            print(
                f"writes               {len(writes)} ({sum(w['status'] < 300 for w in writes)} succeeded, "
                f"{cx.rate_limited} answered 429)"
            )
            print(f"writes per change    {len(writes) / len(changed):.2f}  (target 1.00)")
            print(
                f"write rate           {per_minute:.1f} writes/min over {span:.1f}s of writing "
                f"(whole window run {seconds:.1f}s)"
            )
            print(f"ceiling              {args.rpm} requests/min")
            print(f"ratio                {per_minute / args.rpm:.3f}  (target >= 0.95)")


if __name__ == "__main__":
    main()
