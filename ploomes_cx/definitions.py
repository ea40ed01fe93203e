"""The code location: the merge of one `Definitions` per mapping file in `mappings/`."""

from __future__ import annotations

import dagster as dg

from ploomes_cx.factory import build_integration_defs
from ploomes_cx.home import ensure_home
from ploomes_cx.mapping import load_mappings


@dg.definitions
def defs() -> dg.Definitions:
    ensure_home()
    return dg.Definitions.merge(*[build_integration_defs(m) for m in load_mappings()])
