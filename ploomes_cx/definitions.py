"""The code location: the merge of one `Definitions` per mapping file in `mappings/`."""

from __future__ import annotations

import dagster as dg

from ploomes_cx.factory import build_integration_defs
from ploomes_cx.home import ensure_home
from ploomes_cx.housekeeping import reclaim_abandoned_cli_runs
from ploomes_cx.mapping import load_mappings


@dg.definitions
def defs() -> dg.Definitions:
    ensure_home()
    housekeeping = dg.Definitions(sensors=[reclaim_abandoned_cli_runs])
    return dg.Definitions.merge(housekeeping, *[build_integration_defs(m) for m in load_mappings()])
