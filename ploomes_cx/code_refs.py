"""Each asset's and check's "Source code" link in the UI: the mapping file that made it.

Dagster's components add a code reference to the `defs.yaml` that declared the component
(`Component.get_code_references_for_yaml`), appended after the references the definitions
already carry. Every asset of every mapping would then open `ploomes_cx/defs/mappings/defs.yaml`,
which says nothing about that asset. So `build_integration_defs` puts the mapping file first under
`dagster/code_references`, at the line of the top-level key that made the asset (`clients:`,
`timeline:`, ...) or line 1: first is what the UI lists first and what `dg list defs` shows; loaded
as a plain module (an installed wheel, no defs folder) it is the only reference.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from ploomes_cx.mapping import Mapping
from ploomes_cx.plan import Plan

CODE_REFERENCES = "dagster/code_references"

# the top-level key of a mapping file that makes each raw extract, by the extract's name
RAW_KEYS = {
    "fields": "custom_fields",
    "organizations": "clients",
    "persons": "contacts",
    "deals": "contracts",
    "notes": "timeline",
    "tasks": "timeline",
    "attachments": "timeline",
    "live": "webhooks",
}
# ... and of the assets without a plan role, by the last part of their key
OTHER_KEYS = {"reconcile": "deletes", "live_deletes": "webhooks", "duplicate_clusters": "identifiers"}

Asset = dg.AssetsDefinition | dg.AssetSpec


def key_lines(path: Path) -> dict[str, int]:
    """The line (from 1) of each top-level key of a YAML file; empty when it cannot be read."""
    try:
        node = yaml.compose(
            path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        )
    except (OSError, yaml.YAMLError):
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}


def mapping_reference(m: Mapping) -> Callable[[dg.AssetKey], dg.LocalFileCodeReference] | None:
    """The code reference of each of the mapping's asset keys; None for a mapping without a file."""
    if not m.source_path:
        return None
    path = Path(m.source_path).resolve()
    lines, plan = key_lines(path), Plan.of(m)

    def reference(key: dg.AssetKey) -> dg.LocalFileCodeReference:
        role = plan.role(key)
        top = (
            (RAW_KEYS.get(role[1]) if role[0] == "raw" else role[1]) if role else OTHER_KEYS.get(key.path[-1])
        )
        return dg.LocalFileCodeReference(
            file_path=str(path), line_number=lines.get(top or "", 1), label=f"mapping {path.name}"
        )

    return reference


def _first(metadata: Any, ref: dg.LocalFileCodeReference) -> dict[str, Any]:
    """`metadata` with `ref` first among its code references (any others kept after it)."""
    existing = (metadata or {}).get(CODE_REFERENCES)
    others = [r for r in (existing.code_references if existing else []) if r != ref]
    return {
        **(metadata or {}),
        CODE_REFERENCES: dg.CodeReferencesMetadataValue(code_references=[ref, *others]),
    }


def with_mapping_references(m: Mapping, assets: Sequence[Asset]) -> list[Asset]:
    """Every asset and asset check of `assets` pointing at the mapping file that made it.

    Dagster marks code references beta and warns at each one built: some 40 lines on stderr each
    time a process builds a mapping's definitions (every CLI command, every live batch's alert)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return _with_references(m, assets)


def _with_references(m: Mapping, assets: Sequence[Asset]) -> list[Asset]:
    reference = mapping_reference(m)
    if reference is None:
        return list(assets)
    out: list[Asset] = []
    for a in assets:
        if isinstance(a, dg.AssetSpec):
            out.append(a.replace_attributes(metadata=_first(a.metadata, reference(a.key))))
            continue
        by_key: dict[dg.AssetKey | dg.AssetCheckKey, Any] = {
            k: _first(md, reference(k)) for k, md in a.metadata_by_key.items() if isinstance(k, dg.AssetKey)
        }
        by_key |= {c.key: _first(c.metadata, reference(c.asset_key)) for c in a.check_specs}
        out.append(a.with_attributes(metadata_by_key=by_key))
    return out
