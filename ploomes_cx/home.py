"""Where local state lives: everything under `$PLOOMES_CX_HOME` (default `.ploomes_cx/`).

Deleting that folder is a full reset (contract §3), so the DuckDB files and, unless the user set
DAGSTER_HOME, the Dagster instance are both kept there.
"""

from __future__ import annotations

import os
from pathlib import Path

DAGSTER_YAML = """\
# Written by ploomes-cx on first use. Runs and events are kept in SQLite under this folder.
telemetry:
  enabled: false
"""


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
    if not configured and not config.exists():
        config.write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(path)
    return path
