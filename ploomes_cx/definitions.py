"""The code location: one set of definitions per mapping file of the user's mappings folder.

In a clone (or an editable install) the project's `pyproject.toml` sits beside the package, and the
components under `ploomes_cx/defs/` build it, as `dg` expects. Installed from the wheel there is no
project file (`load_from_defs_folder` would stop at "Could not find config file"), so the same
builder is called directly; both read `$PLOOMES_CX_MAPPINGS`, else `./mappings`.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from ploomes_cx.component import PloomesCxMappings, mappings_defs

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dg.definitions
def defs() -> dg.Definitions:
    if (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "ploomes_cx" / "defs").is_dir():
        return dg.load_from_defs_folder(project_root=PROJECT_ROOT)
    return mappings_defs(PloomesCxMappings().folder())
