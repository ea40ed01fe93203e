"""Where local state lives: everything under `$PLOOMES_CX_HOME` (default `.ploomes_cx/`).

Deleting that folder is a full reset (contract §3), so the DuckDB files and, unless the user set
DAGSTER_HOME, the Dagster instance are both kept there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

DAGSTER_YAML = """\
# Written by ploomes-cx on first use. Runs and events are kept in SQLite under this folder.
telemetry:
  enabled: false
run_monitoring:
  # with `dagster dev`, the daemon gives back pool slots of runs that ended without freeing them
  enabled: true
  free_slots_after_run_end_seconds: 60
run_retries:
  # a run whose process crashed (not one whose step failed) is started again, twice at most;
  # `ploomes-cx sync` runs opt out (tag dagster/max_retries: 0): the person re-runs the command
  enabled: true
  max_retries: 2
  retry_on_asset_or_op_failure: false
freshness:
  # the load assets carry a freshness policy: late when a window's sync has not landed in time
  enabled: true
concurrency:
  pools:
    # Every step that calls an API sits in a pool named after the credential's variable
    # (ploomes_api__<user_key_env>, customerx_api__<token_env>): one such step at a time per
    # credential, across all runs and backfills, shown in the UI as "blocked by pool". On one
    # machine the steps also take turns under a lock file beside the account's pacing file.
    default_limit: 1
  runs:
    tag_concurrency_limits:
      # One in-progress run per mapping: its DuckDB file has one writer, and windows load in order.
      - key: ploomes_cx/mapping
        value:
          applyLimitPerUniqueValue: true
        limit: 1
"""


# The folder is written out, not read from $DAGSTER_HOME: a process that opens this instance by its
# folder, with DAGSTER_HOME unset or naming another, must still find these files.
STORAGE_YAML = """\
storage:
  # Dagster's SQLite storage (same files, same places) keeping its database engines for the
  # process instead of building one per event stored (runtime/instance_storage.py)
  custom:
    module: ploomes_cx.runtime.instance_storage
    class: KeptEnginesSqliteStorage
    config:
      base_dir: {base_dir}
"""


def dagster_yaml(folder: Path) -> str:
    """The dagster.yaml ploomes-cx writes into the instance folder `folder`."""
    return DAGSTER_YAML + STORAGE_YAML.format(base_dir=json.dumps(str(folder.resolve())))


def home() -> Path:
    return Path(os.environ.get("PLOOMES_CX_HOME") or ".ploomes_cx").resolve()


def ensure_home() -> Path:
    path = home()
    path.mkdir(parents=True, exist_ok=True)
    return path


def ensure_dagster_home() -> Path:
    """Point DAGSTER_HOME at `$PLOOMES_CX_HOME/dagster` unless the user chose another."""
    configured = os.environ.get("DAGSTER_HOME")
    path = Path(configured).resolve() if configured else ensure_home() / "dagster"
    path.mkdir(parents=True, exist_ok=True)
    config = path / "dagster.yaml"
    # Rewritten while it is still ours (first line unchanged), so older state folders get new
    # settings and a moved folder its new place.
    current = config.read_text() if config.exists() else None
    wanted = dagster_yaml(path)
    ours = current is None or current.startswith(DAGSTER_YAML.splitlines()[0])
    if not configured and ours and current != wanted:
        config.write_text(wanted)
    os.environ["DAGSTER_HOME"] = str(path)
    return path
