"""The code location as a Dagster Component: every mapping file of a folder, built into definitions.

`mappings/*.yaml` keep the contract's flat shape, outside the package; this one component type,
declared once in `ploomes_cx/defs/mappings/defs.yaml`, loads them and merges one prefixed set of
definitions per file (`factory.build_integration_defs`). That is what lets `dg check defs`,
`dg list defs` and `dg dev` see a clone as Dagster's own tools expect. An installed wheel has no
project around it, so `definitions.py` calls `mappings_defs` directly there.
"""

# No `from __future__ import annotations` here: a Resolvable dataclass with string annotations
# breaks `dg` (dagster's resolved/base.py reads the real types).
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from ploomes_cx.factory import build_integration_defs
from ploomes_cx.mappings_folder import location_mappings, mappings_dir
from ploomes_cx.runtime.housekeeping import reclaim_abandoned_cli_runs
from ploomes_cx.runtime.state import ensure_home


def mappings_defs(folder: Path) -> dg.Definitions:
    """One prefixed set of definitions per mapping in `folder`, plus the housekeeping sensor.

    Assets materialized from the UI outside a job (a selection on the asset graph, a single asset)
    run in-process like the jobs (factory.py). Dagster's default starts a process per step, 2-3 s
    each, for little: the pools let one API step per credential run at a time. And its loop has no
    pause while a step waits for its pool slot (read in dagster/_core/executor/multiprocess.py;
    runtime/claim_wait.py mends only the in-process loop)."""
    ensure_home()
    housekeeping = dg.Definitions(sensors=[reclaim_abandoned_cli_runs], executor=dg.in_process_executor)
    return dg.Definitions.merge(housekeeping, *[build_integration_defs(m) for m in location_mappings(folder)])


@dataclass
class PloomesCxMappings(dg.Component, dg.Resolvable):
    """One Ploomes -> CustomerX integration per YAML file in `directory`; `$PLOOMES_CX_MAPPINGS`
    names another folder for one process."""

    directory: str = "mappings"

    def folder(self, root: Path | None = None) -> Path:
        """`$PLOOMES_CX_MAPPINGS`, else `directory` of the project root when `dg` loads the clone
        (from any of its folders), else of the current directory, as every command reads it."""
        if os.environ.get("PLOOMES_CX_MAPPINGS"):
            return mappings_dir()
        return (root or Path.cwd()) / self.directory

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return mappings_defs(self.folder(context.project_root))

    @classmethod
    def get_code_references_for_yaml(
        cls, yaml_path: Path, source_position: Any, context: dg.ComponentLoadContext
    ) -> Sequence[dg.LocalFileCodeReference]:
        """None: each asset already points at the mapping file that made it (`code_refs.py`); the
        one declaration every mapping shares would be a second "Source code" link that explains nothing."""
        return []
