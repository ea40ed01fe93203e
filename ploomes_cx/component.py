"""The code location as a Dagster Component: every mapping file of a folder, built into definitions.

`mappings/*.yaml` keep the contract's flat shape, outside the package; this one component type,
declared once in `ploomes_cx/defs/mappings/defs.yaml`, loads them and merges one prefixed set of
definitions per file (`factory.build_integration_defs`). That is what lets `dg check defs`,
`dg list defs` and `dg dev` see the project as Dagster's own tools expect.
"""

# No `from __future__ import annotations` here: a Resolvable dataclass with string annotations
# breaks `dg` (dagster's resolved/base.py reads the real types).
import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from ploomes_cx.factory import build_integration_defs
from ploomes_cx.mapping import load_mappings
from ploomes_cx.runtime.housekeeping import reclaim_abandoned_cli_runs
from ploomes_cx.runtime.state import ensure_home

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class PloomesCxMappings(dg.Component, dg.Resolvable):
    """One Ploomes -> CustomerX integration per YAML file in `directory` (relative to the project
    root); `$PLOOMES_CX_MAPPINGS` names another folder for one process (tests, a second account)."""

    directory: str = "mappings"

    def folder(self) -> Path:
        configured = os.environ.get("PLOOMES_CX_MAPPINGS")
        return Path(configured) if configured else PROJECT_ROOT / self.directory

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        ensure_home()
        housekeeping = dg.Definitions(sensors=[reclaim_abandoned_cli_runs])
        return dg.Definitions.merge(
            housekeeping, *[build_integration_defs(m) for m in load_mappings(self.folder())]
        )
