"""Seconds from a change in Ploomes to its write in CustomerX through the webhook path (§4.3).

Starts both sandbox servers, syncs the first windows (fast, to fill CustomerX), then paces the
CustomerX sandbox at 60 requests/min (the real account's limit) and runs `ploomes-cx listen` with
the mapping paced the same, registers the webhooks, and makes --changes single changes one after
another through the sandbox (a client renamed, a contact renamed, a deal won, in
turn). For each: the seconds from the change to the CustomerX write it causes, and the seconds
the receiver took to answer the webhook (stored durably before answering). Prints p50 / p95 / max
of both, the target (p95 <= 15 s for single changes) and the live runs' own durations.
Run: `make bench-live`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from ploomes_cx.cli import main as cli
from ploomes_cx.live.process import ListenProcess, wait_for
from ploomes_cx.runtime.duckdb_io import database_path
from ploomes_cx.sandbox import CustomerXSandbox, PloomesDataset, PloomesSandbox

KEY = "bench-live-validation-key"
MAPPING = """\
name: livebench
customerx:
  requests_per_minute: {rpm}
sync:
  start: "2026-11-01"
quality:
  max_rejected_ratio: 0.9
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def targets(home: Path, n: int) -> dict[str, list[int]]:
    """Records the synced windows loaded, so each change has a CustomerX record to reach."""
    with duckdb.connect(str(database_path(home, "livebench")), read_only=True) as con:

        def ids(sql: str) -> list[int]:
            return [int(r[0]) for r in con.execute(sql).fetchall()]

        return {
            "client": ids(
                "select o.id from livebench.raw_organizations o join livebench.stg_clients c "
                f"on c.external_id = o.id::varchar order by o.id limit {n}"
            ),
            "contact": ids(
                "select p.id from livebench.raw_persons p join livebench.stg_contacts c "
                f"on c.external_id = p.id::varchar order by p.id limit {n}"
            ),
            "deal": ids(
                "select d.id from livebench.raw_deals d where (d.payload->>'$.StatusId')::int = 1 "
                "and (d.payload->>'$.ContactId') in (select external_id from livebench.stg_clients) "
                f"order by d.id limit {n}"
            ),
        }


def change(ploomes: PloomesSandbox, kind: str, record_id: int, i: int) -> None:
    if kind == "client":
        ploomes.touch("contacts", record_id, {"Name": f"Renomeada {i} Ltda"})
    elif kind == "contact":
        ploomes.touch("contacts", record_id, {"Name": f"Pessoa Renomeada {i}"})
    else:
        ploomes.touch("deals", record_id, {"StatusId": 2})


def run(changes: int, persons: int, rpm: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-live-"))
    os.environ["PLOOMES_CX_HOME"] = str(work / "state")
    os.environ.pop("DAGSTER_HOME", None)
    mapping = work / "livebench.yaml"
    with (
        PloomesSandbox(PloomesDataset(persons=persons, seed=11), user_key="bench-key") as ploomes,
        CustomerXSandbox(token="bench-token", requests_per_minute=3000, burst=50) as customerx,
    ):
        os.environ.update(
            PLOOMES_BASE_URL=ploomes.url,
            PLOOMES_USER_KEY="bench-key",
            CUSTOMERX_BASE_URL=customerx.url,
            CUSTOMERX_TOKEN="bench-token",
            PLOOMES_WEBHOOK_KEY=KEY,
        )
        mapping.write_text(MAPPING.format(rpm=3000))
        started = time.monotonic()
        assert cli(["sync", str(mapping), "--window", "2026-11-01..2026-11-03"]) == 0
        print(f"first sync: {time.monotonic() - started:.0f} s; now CustomerX at {rpm} requests/min")
        mapping.write_text(MAPPING.format(rpm=rpm))
        customerx.set_rate_limit(rpm, burst=1)
        picked = targets(work / "state", changes)
        listener = ListenProcess(str(mapping)).start()
        try:
            assert cli(["webhooks", "register", str(mapping), "--url", listener.url]) == 0
            latencies, kinds = [], ["client", "contact", "deal"]
            for i in range(changes):
                kind = kinds[i % 3]
                record_id = picked[kind][i // 3]
                writes = len(customerx.writes)
                t0 = time.monotonic()
                change(ploomes, kind, record_id, i)
                wait_for(lambda w=writes: len(customerx.writes) > w, 120, f"the write for {kind} {record_id}")
                latencies.append(time.monotonic() - t0)
                wait_for(listener.idle, 120, "the batch to end")
                print(f"  change {i + 1:>2} ({kind:<7} {record_id}): {latencies[-1]:5.2f} s to CustomerX")
        finally:
            output = listener.stop()
        answered = [d.answered_in for d in ploomes.webhooks.deliveries if d.answered_in is not None]
    runs = [float(x) for x in _run_seconds(output)]
    print(f"\n{changes} single changes, CustomerX paced at {rpm}/min, {persons} persons in the account")
    print(
        f"change -> CustomerX write: p50 {percentile(latencies, 0.5):.2f} s, p95 {percentile(latencies, 0.95):.2f} s, "
        f"max {max(latencies):.2f} s (target p95 <= 15 s: {'met' if percentile(latencies, 0.95) <= 15 else 'NOT met'})"
    )
    print(
        f"webhook answered (stored durably) in: p50 {statistics.median(answered) * 1000:.1f} ms, "
        f"p95 {percentile(answered, 0.95) * 1000:.1f} ms, max {max(answered) * 1000:.1f} ms ({len(answered)} calls)"
    )
    if runs:
        print(
            f"live runs: {len(runs)}, seconds each: median {statistics.median(runs):.2f}, max {max(runs):.2f}"
        )


def _run_seconds(output: str) -> list[str]:
    import re

    return re.findall(r": done in ([\d.]+) s", output)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--persons", type=int, default=2000, help="size of the sandbox account")
    parser.add_argument("--rpm", type=int, default=60, help="CustomerX requests/min (sandbox and mapping)")
    args = parser.parse_args()
    run(args.changes, args.persons, args.rpm)


if __name__ == "__main__":
    main()
