"""The code location: what the components under `ploomes_cx/defs/` build (one set per mapping file)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(project_root=Path(__file__).resolve().parent.parent)
