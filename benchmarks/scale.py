"""Many accounts at once on a real instance: N mappings synced together through the run queue.

Starts a throwaway PostgreSQL (Debian's package, `benchmarks/postgres.py`) and points a Dagster
instance at it (`deploy/dagster.yaml`'s storage, run queue, pools and per-mapping run limit);
starts N sandbox accounts, each a Ploomes and a CustomerX server with its own credentials and
its own enforced rate limits (the real ones times --speedup); writes N mappings naming those
credentials; starts the webserver and the daemon (`ploomes-cx ui`) on that instance; launches
one backfill per mapping over --windows daily windows, as the UI does; and waits for every run.
Prints per mapping: its runs' status, the records CustomerX received, the CustomerX and Ploomes
request rates as ratios of its own ceilings (over the time it was calling each API), and its
run's queue wait; then the total records/min, the peak memory of the run processes and the
instance's queue wait. Run: `make bench-scale`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.dagster_ui import (
    BACKFILL_RUNS,
    LAUNCH_BACKFILL,
    backfill_selector,
    graphql,
    running_ui,
)
from benchmarks.memory import vm_hwm
from benchmarks.postgres import ROOT, LocalPostgres
from ploomes_cx.sandbox import CustomerXSandbox, PloomesDataset, PloomesSandbox

PLOOMES_RPM, CUSTOMERX_RPM = 120, 60
MAPPING = """\
name: {name}
ploomes:
  base_url_env: PLOOMES_BASE_URL_{n}
  user_key_env: PLOOMES_USER_KEY_{n}
  requests_per_minute: {p_rpm}
customerx:
  base_url_env: CUSTOMERX_BASE_URL_{n}
  token_env: CUSTOMERX_TOKEN_{n}
  requests_per_minute: {c_rpm}
sync:
  start: "2026-11-01"
quality:
  max_rejected_ratio: 0.9
"""


@dataclass
class Account:
    name: str
    ploomes: PloomesSandbox
    customerx: CustomerXSandbox
    runs: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ScaleResult:
    accounts: list[Account]
    seconds: float
    home: Path
    peak_rss: dict[int, int]  # run process id -> peak resident bytes
    stored_runs: int  # runs the PostgreSQL instance holds


def _sample_runs(peaks: dict[int, int]) -> None:
    """Peak RSS (VmHWM) of every run worker the daemon started: the code server runs each run in a
    process of its own (`dagster api execute_run`, or a multiprocessing child `spawn_main`)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            if b"execute_run" not in cmdline and b"spawn_main" not in cmdline:
                continue
            peak = vm_hwm((proc / "status").read_text())
            if peak is not None:
                peaks[int(proc.name)] = max(peaks.get(int(proc.name), 0), peak)
        except OSError:
            continue


def run_scale(
    mappings: int, windows: int, persons: int, speedup: float, folder: Path, timeout: float = 1800
) -> ScaleResult:
    """Sync `mappings` sandbox accounts at once through the daemon on a PostgreSQL instance."""
    p_rpm, c_rpm = PLOOMES_RPM * speedup, CUSTOMERX_RPM * speedup
    mapping_dir, home = folder / "mappings", folder / "state"
    mapping_dir.mkdir(parents=True)
    env = dict(os.environ)
    accounts: list[Account] = []
    with LocalPostgres() as pg:
        env.update(pg.env(), DAGSTER_HOME=str(pg.instance_folder(folder / "dagster")))
        env.update(PLOOMES_CX_HOME=str(home), PLOOMES_CX_MAPPINGS=str(mapping_dir))
        try:
            for i in range(1, mappings + 1):
                n, name = f"{i:02d}", f"account_{i:02d}"
                dataset = PloomesDataset(persons=persons, seed=100 + i)
                ploomes = PloomesSandbox(dataset, user_key=f"key-{n}", requests_per_minute=p_rpm).start()
                customerx = CustomerXSandbox(token=f"token-{n}", requests_per_minute=c_rpm).start()
                accounts.append(Account(name, ploomes, customerx))
                (mapping_dir / f"{name}.yaml").write_text(
                    MAPPING.format(name=name, n=n, p_rpm=p_rpm, c_rpm=c_rpm)
                )
                env.update(
                    {
                        f"PLOOMES_BASE_URL_{n}": ploomes.url,
                        f"PLOOMES_USER_KEY_{n}": ploomes.user_key,
                        f"CUSTOMERX_BASE_URL_{n}": customerx.url,
                        f"CUSTOMERX_TOKEN_{n}": customerx.token,
                    }
                )
            started, peaks = _sync_all(accounts, env, folder, windows, timeout)
            stored = int(pg.query("select count(*) from runs"))
        finally:
            for account in accounts:
                account.ploomes.stop()
                account.customerx.stop()
    return ScaleResult(accounts, started, home, peaks, stored)


def _sync_all(
    accounts: list[Account], env: dict[str, str], folder: Path, windows: int, timeout: float
) -> tuple[float, dict[int, int]]:
    log = folder / "dagster-dev.log"
    peaks: dict[int, int] = {}
    with running_ui(env, log, ROOT) as url:
        keys = [f"2026-11-{d:02d}" for d in range(1, windows + 1)]
        started = time.monotonic()
        backfills = {}
        for account in accounts:
            params = {"selector": backfill_selector(account.name), "partitionNames": keys}
            answer = graphql(url, LAUNCH_BACKFILL, {"params": params})
            launched = answer["data"]["launchPartitionBackfill"]
            if launched["__typename"] != "LaunchBackfillSuccess":
                raise RuntimeError(f"{account.name}: {launched}\n{log.read_text()[-3000:]}")
            backfills[account.name] = launched["backfillId"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _sample_runs(peaks)
            done = True
            for account in accounts:
                tags = [{"key": "dagster/backfill", "value": backfills[account.name]}]
                account.runs = graphql(url, BACKFILL_RUNS, {"tags": tags})["data"]["runsOrError"]["results"]
                finished = all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in account.runs)
                done = done and bool(account.runs) and finished
            if done:
                break
            time.sleep(1)
        return time.monotonic() - started, peaks


def _ratio(times: list[float], rpm: float) -> float:
    """Requests per minute while the API was being called, as a ratio of its ceiling."""
    if len(times) < 2 or times[-1] <= times[0]:
        return float("nan")
    return (len(times) - 1) / (times[-1] - times[0]) * 60 / rpm


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mappings", type=int, default=20)
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--persons", type=int, default=150, help="persons per sandbox account")
    parser.add_argument("--speedup", type=float, default=2, help="every rate limit multiplied by this")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = run_scale(args.mappings, args.windows, args.persons, args.speedup, Path(tmp))
    p_rpm, c_rpm = PLOOMES_RPM * args.speedup, CUSTOMERX_RPM * args.speedup
    print(
        f"{args.mappings} mappings x {args.windows} windows, {args.persons} persons each; limits per account"
    )
    print(f"Ploomes {p_rpm:g}/min, CustomerX {c_rpm:g}/min (x{args.speedup:g}); 2 cores; PostgreSQL instance")
    print(f"{'mapping':<12}{'runs':>6}{'records':>9}{'cx ratio':>10}{'pl ratio':>10}{'queue s':>9}")
    total, waits, ratios = 0, [], []
    for a in result.accounts:
        writes = [w for w in a.customerx.writes if w["status"] < 300]
        total += len(writes)
        ok = sum(r["status"] == "SUCCESS" for r in a.runs)
        wait = (
            max((r["startTime"] or r["creationTime"]) - r["creationTime"] for r in a.runs) if a.runs else 0.0
        )
        waits.append(wait)
        cx = _ratio([t for t, method, _ in a.customerx.requests if method != "GET"], c_rpm)
        pl = _ratio([t for t, _ in a.ploomes.requests], p_rpm)
        ratios.append(cx)
        print(f"{a.name:<12}{ok:>3}/{len(a.runs):<2}{len(writes):>9}{cx:>10.2f}{pl:>10.2f}{wait:>9.1f}")
    peaks = sorted(result.peak_rss.values())
    print(
        f"total: {total:,} records in {result.seconds:.0f}s = {total / result.seconds * 60:,.0f} records/min"
    )
    print(f"CustomerX ratio to ceiling: min {min(ratios):.2f}, target >= 0.90 for every mapping")
    if peaks:
        print(
            f"run processes: {len(peaks)}, peak RSS max {peaks[-1] / 2**20:.0f} MiB, median {peaks[len(peaks) // 2] / 2**20:.0f} MiB"
        )
    print(f"queue wait: max {max(waits):.1f}s; runs stored in PostgreSQL: {result.stored_runs}")


if __name__ == "__main__":
    main()
