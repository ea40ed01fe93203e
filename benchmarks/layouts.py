"""`make bench-layouts`: three ways to lay out N mappings in Dagster, measured as a user meets them
(issue 30, point 3).

The code location today holds one prefixed asset graph per mapping, and every process that loads
it (webserver, daemon, each run worker) pays for every mapping. This measures Dagster's own cost
of the candidates with stand-in definitions of the same shape (`benchmarks/layout_toy.py`: no
ploomes-cx code, so our per-mapping cost, `make bench-defs`, comes on top of the per-mapping
figures here and not of the shared ones):

- build: seconds to build the definitions and Dagster's repository, assets, peak RSS (a fresh
  process per figure);
- UI load: a webserver started on the layout until every code location has loaded, then the two
  queries its pages start with: the asset graph (lineage, catalog) and one asset's partitions;
- run start: a run's process started as a run worker is (`dagster job execute`) until its
  first step starts.

Sharded: `--shard-size` mappings per code location; the build and run start are one shard's (a
run worker loads only its own location), the UI load is every shard's.
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

from benchmarks.dagster_ui import graphql, wait_for_code_location
from benchmarks.defs import time_to_first_step
from benchmarks.postgres import free_port

ROOT = Path(__file__).resolve().parent.parent
MODULE = "benchmarks.layout_toy"
BUILD = """
import json, resource, time
started = time.perf_counter()
import benchmarks.layout_toy as toy
defs = toy.defs if toy.defs is not None else getattr(toy, "shard_00")
built = time.perf_counter()
repo = defs.get_repository_def()
done = time.perf_counter()
print(json.dumps({"defs_s": built - started, "repository_s": done - built,
    "assets": len(repo.asset_graph.get_all_asset_keys()), "schedules": len(repo.schedule_defs),
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""
ASSET_GRAPH = "{ assetNodes { assetKey { path } partitionDefinition { description } } }"
PARTITIONS = """query P($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
  partitionStats { numMaterialized numPartitions } } } }"""


def _env(layout: str, count: int, shard_size: int) -> dict[str, str]:
    env = {**os.environ, "LAYOUT_MAPPINGS": str(count), "LAYOUT_SHARD_SIZE": str(shard_size)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("DAGSTER_HOME", None)
    if layout == "sharded":
        env.pop("LAYOUT", None)  # each location names its shard: `-a shard_NN`
    else:
        env["LAYOUT"] = layout
    return env


def measure_build(env: dict[str, str]) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-c", BUILD], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"building the definitions failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _workspace(folder: Path, layout: str, count: int, shard_size: int) -> Path:
    shards = -(-count // shard_size) if layout == "sharded" else 1
    lines = ["load_from:"]
    for shard in range(shards):
        lines.append(f"  - python_module:\n      module_name: {MODULE}\n      working_directory: {ROOT}")
        if layout == "sharded":
            lines.append(f"      attribute: shard_{shard:02d}\n      location_name: shard_{shard:02d}")
    path = folder / "workspace.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def measure_ui(
    env: dict[str, str], layout: str, count: int, shard_size: int, folder: Path
) -> dict[str, float]:
    """Seconds from starting the webserver to every location loaded, then per query."""
    home = folder / "dagster"
    home.mkdir(exist_ok=True)
    # a location of 1,000 per-mapping graphs takes minutes: give it 30 (Dagster's default is 3)
    (home / "dagster.yaml").write_text("code_servers:\n  local_startup_timeout: 1800\n")
    port, log = free_port(), folder / "webserver.log"
    command = [
        sys.executable,
        "-m",
        "dagster_webserver",
        "-w",
        str(_workspace(folder, layout, count, shard_size)),
    ]
    started = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*command, "-p", str(port)],
            env={**env, "DAGSTER_HOME": str(home)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_code_location(url, proc, log, timeout=1800)
        loaded = time.perf_counter() - started
        t = time.perf_counter()
        nodes = graphql(url, ASSET_GRAPH, timeout=600)["data"]["assetNodes"]
        graph_s = time.perf_counter() - t
        load_key = next(n["assetKey"]["path"] for n in nodes if n["assetKey"]["path"][-1] == "load_clients")
        t = time.perf_counter()
        stats = graphql(url, PARTITIONS, {"key": {"path": load_key}}, timeout=600)["data"]["assetNodeOrError"]
        partitions_s = time.perf_counter() - t
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return {
        "ui_loaded_s": loaded,
        "asset_graph_s": graph_s,
        "asset_nodes": len(nodes),
        "partitions_s": partitions_s,
        "partitions": stats["partitionStats"]["numPartitions"],
    }


def measure_run_start(env: dict[str, str], layout: str, folder: Path) -> float:
    """Seconds from a run worker's launch to its first step (stopped there)."""
    home = folder / "run-home"
    home.mkdir()
    if layout == "shared":
        job, key = "all_sync", "acct_0000|2026-11-01"
    else:
        job, key = "acct_0000_sync", "2026-11-01"
    where = ["-m", MODULE, *(["-a", "shard_00"] if layout == "sharded" else []), "-j", job]
    return time_to_first_step(where, key, env, home, ROOT)


def measure(layout: str, count: int, shard_size: int, ui: bool) -> dict[str, float]:
    env = _env(layout, count, shard_size)
    with tempfile.TemporaryDirectory() as tmp:
        result = measure_build(env)
        result["run_start_s"] = measure_run_start(env, layout, Path(tmp))
        if ui:
            result |= measure_ui(env, layout, count, shard_size, Path(tmp))
    return result


def _line(layout: str, count: int, r: dict[str, float]) -> str:
    text = (
        f"{layout:<12}{count:>6}  build {r['defs_s'] + r['repository_s']:6.2f} s "
        f"(definitions {r['defs_s']:.2f}, repository {r['repository_s']:.2f}), {r['assets']:>6} assets, "
        f"{r['peak_rss_mib']:.0f} MiB; run start {r['run_start_s']:.1f} s"
    )
    if "ui_loaded_s" in r:
        text += (
            f"; UI loaded {r['ui_loaded_s']:.1f} s, asset graph {r['asset_graph_s']:.2f} s "
            f"({r['asset_nodes']} nodes), partitions of one asset {r['partitions_s']:.2f} s ({r['partitions']:,})"
        )
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--mappings", default="1,100,1000", help="comma-separated counts (default 1,100,1000)"
    )
    parser.add_argument("--layouts", default="per_mapping,shared,sharded")
    parser.add_argument("--shard-size", type=int, default=50)
    parser.add_argument("--no-ui", action="store_true", help="skip the webserver figures")
    args = parser.parse_args()
    print("layout      mappings  (Dagster's cost only: stand-in definitions, benchmarks/layout_toy.py)")
    for count in (int(c) for c in args.mappings.split(",")):
        for layout in args.layouts.split(","):
            result = measure(layout, count, args.shard_size, ui=not args.no_ui)
            print(_line(layout, count, result), flush=True)
    print("targets (issue 30): 1,000 mappings build within 5 s of one; a run starts within 5 s")


if __name__ == "__main__":
    main()
