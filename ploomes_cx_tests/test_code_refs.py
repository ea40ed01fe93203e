"""Every asset's and check's "Source code" link is the mapping file that made it, and only that
(not the defs.yaml every mapping shares), loaded through the Component or as a plain module."""

from __future__ import annotations

import warnings
from pathlib import Path

import dagster as dg
import pytest

from ploomes_cx.code_refs import key_lines
from ploomes_cx.factory import build_integration_defs
from ploomes_cx.mappings_folder import load_mappings
from ploomes_cx_tests.conftest import write_mapping

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "mappings"
    folder.mkdir()
    write_mapping(folder, "north")
    write_mapping(folder, "south", "timeline: [notes]\n")
    monkeypatch.setenv("PLOOMES_CX_MAPPINGS", str(folder))
    monkeypatch.setenv("PLOOMES_CX_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return folder


def _first_references(
    defs: dg.Definitions,
) -> dict[dg.AssetKey | dg.AssetCheckKey, dg.LocalFileCodeReference]:
    graph = defs.resolve_asset_graph()
    keys = [*graph.get_all_asset_keys(), *graph.asset_check_keys]
    found = {}
    for key in keys:
        refs = graph.get(key).metadata["dagster/code_references"].code_references
        found[key] = refs[0]
    return found


def _assert_each_points_at_its_mapping(found: dict, folder: Path) -> None:
    assert {k.asset_key.path[0] if isinstance(k, dg.AssetCheckKey) else k.path[0] for k in found} == {
        "north",
        "south",
    }
    for key, ref in found.items():
        name = (key.asset_key if isinstance(key, dg.AssetCheckKey) else key).path[0]
        assert ref.file_path == str((folder / f"{name}.yaml").resolve()), key
        assert ref.label == f"mapping {name}.yaml"
    lines = key_lines(folder / "south.yaml")
    assert found[dg.AssetKey(["south", "stg_clients"])].line_number == lines.get("clients", 1)
    assert found[dg.AssetKey(["south", "raw_notes"])].line_number == lines["timeline"]
    assert found[dg.AssetKey(["south", "raw_fields"])].line_number == lines["custom_fields"]


def test_loaded_through_the_component_the_mapping_file_is_the_only_reference(folder: Path) -> None:
    defs = dg.load_from_defs_folder(path_within_project=PROJECT_ROOT)
    found = _first_references(defs)
    _assert_each_points_at_its_mapping(found, folder)
    graph = defs.resolve_asset_graph()
    refs = (
        graph.get(dg.AssetKey(["north", "stg_clients"])).metadata["dagster/code_references"].code_references
    )
    names = [Path(r.file_path).name for r in refs]
    assert names == ["north.yaml"]  # not also the defs.yaml every mapping shares


def test_loaded_as_a_plain_module_without_the_defs_folder_too(folder: Path) -> None:
    defs = dg.Definitions.merge(*[build_integration_defs(m) for m in load_mappings(folder)])
    found = _first_references(defs)
    _assert_each_points_at_its_mapping(found, folder)
    refs = defs.resolve_asset_graph().get(dg.AssetKey(["north", "load_clients"])).metadata
    assert len(refs["dagster/code_references"].code_references) == 1


def test_building_the_references_says_nothing_on_stderr(folder: Path) -> None:
    """Dagster warns once per code reference built (beta); every command builds a mapping's
    definitions, so those warnings were some 40 lines of noise on each command's stderr."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        build_integration_defs(load_mappings(folder)[0])
    noisy = [str(w.message) for w in seen if "CodeReference" in str(w.message)]
    assert noisy == []
