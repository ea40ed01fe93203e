"""`make bench-defs`: what the code location costs as mappings are added (issue 30).

Every process that loads the code location (the webserver, the daemon, each run worker) pays for
every mapping in the folder, whatever it runs. This writes N copies of the built-in sandbox mapping
(each its own name) into a temporary folder and, in a fresh process per N, times building the
definitions (`ploomes_cx.definitions.defs()`) and Dagster's repository from them, and reads the
process's peak memory. It prints one line per N and the ratio of the largest N's build to one
mapping's, against the target: 1,000 mappings within 5 s of one mapping.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from ploomes_cx.mappings_folder import BUILT_IN_DIR

PROBE = """
import json, resource, time
started = time.perf_counter()
import ploomes_cx.definitions as location
imported = time.perf_counter()
defs = location.defs()
built = time.perf_counter()
repo = defs.get_repository_def()
assets = len(repo.asset_graph.get_all_asset_keys())
done = time.perf_counter()
print(json.dumps({
    "import_s": imported - started, "defs_s": built - imported, "repository_s": done - built,
    "assets": assets, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def write_mappings(folder: Path, count: int) -> None:
    template = yaml.safe_load((BUILT_IN_DIR / "sandbox.yaml").read_text())
    for i in range(count):
        (folder / f"acct_{i:04d}.yaml").write_text(yaml.safe_dump({**template, "name": f"acct_{i:04d}"}))


def measure(count: int, run_start: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "mappings"
        folder.mkdir()
        write_mappings(folder, count)
        env = {**os.environ, "PLOOMES_CX_MAPPINGS": str(folder), "PLOOMES_CX_HOME": str(Path(tmp) / "state")}
        env.pop("DAGSTER_HOME", None)
        proc = subprocess.run(
            [sys.executable, "-c", PROBE], env=env, cwd=tmp, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise SystemExit(f"building {count} mappings failed:\n{proc.stderr[-3000:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        if run_start:
            result["run_start_s"] = _run_start(env, Path(tmp))
        return result


def _run_start(env: dict[str, str], tmp: Path) -> float:
    """Seconds from starting a run's process to its first step, as a run worker pays them: a new
    process (`dagster job execute`, like the default run launcher's `dagster api execute_run`) loads
    the whole code location before it starts a step. The credentials point nowhere."""
    home = tmp / "dagster"
    home.mkdir()
    nowhere = "http://127.0.0.1:9"
    env = {**env, "PLOOMES_BASE_URL": nowhere, "CUSTOMERX_BASE_URL": nowhere}
    env |= {"PLOOMES_USER_KEY": "bench", "CUSTOMERX_TOKEN": "bench"}
    where = ["-m", "ploomes_cx.definitions", "-j", "acct_0000_sync"]
    return time_to_first_step(where, "2026-11-01", env, home, tmp)


def time_to_first_step(
    where: list[str], partition: str, env: dict[str, str], home: Path, cwd: Path, timeout: float = 1800
) -> float:
    """Seconds from launching `dagster job execute <where>` for `partition` on the instance in
    `home` to its first step's start; the process is stopped there."""
    import dagster as dg

    env = {**env, "DAGSTER_HOME": str(home)}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs(limit=1)  # the instance's storage exists before the clock starts, as in production
    tags = json.dumps({"dagster/partition": partition})
    started = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagster", "job", "execute", *where, "--tags", tags],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            while time.time() - started < timeout:
                for run in instance.get_runs(limit=1):
                    first = instance.get_records_for_run(
                        run.run_id, of_type=dg.DagsterEventType.STEP_START, limit=1
                    ).records
                    if first:
                        return first[0].event_log_entry.timestamp - started
                if proc.poll() is not None:
                    raise SystemExit(f"the run ended (exit {proc.returncode}) before any step started")
                time.sleep(0.1)
        raise SystemExit(f"no step started within {timeout:.0f} s")
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--mappings", default="1,100,1000", help="comma-separated counts (default 1,100,1000)"
    )
    args = parser.parse_args()
    counts = [int(c) for c in args.mappings.split(",")]
    results = {}
    for count in counts:
        r = results[count] = measure(count, run_start=count == counts[-1])
        total = r["defs_s"] + r["repository_s"]
        print(
            f"{count:>5} mapping(s): {r['assets']:>6} assets; definitions {r['defs_s']:.2f} s, "
            f"repository {r['repository_s']:.2f} s, total {total:.2f} s "
            f"({total / count:.3f} s a mapping); import {r['import_s']:.2f} s; peak RSS {r['peak_rss_mib']:.0f} MiB",
            flush=True,
        )
    last_run = results[counts[-1]]["run_start_s"]
    print(
        f"run start at {counts[-1]} mapping(s): {last_run:.1f} s from launch to first step (target: under 5 s; ratio {last_run / 5:.2f})"
    )
    if len(counts) > 1:
        first, last = results[counts[0]], results[counts[-1]]
        extra = (last["defs_s"] + last["repository_s"]) - (first["defs_s"] + first["repository_s"])
        print(
            f"{counts[-1]} mappings cost {extra:.1f} s more than {counts[0]} (target: at most 5 s; ratio {extra / 5:.2f})"
        )


if __name__ == "__main__":
    main()
