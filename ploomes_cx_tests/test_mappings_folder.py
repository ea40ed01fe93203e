"""Where mappings are found: the user's folder for every command, the project's for `dg` in a
clone, and the built-in `sandbox` mapping where the CLI would find it, in the UI the CLI starts."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from ploomes_cx.cli.servers import _shown_folder
from ploomes_cx.decisions import decisions_path
from ploomes_cx.mappings_folder import WITH_BUILT_IN, location_mappings, mappings_dir, resolve_mapping
from ploomes_cx_tests.conftest import write_mapping

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A current directory that is not the clone, with no $PLOOMES_CX_MAPPINGS."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PLOOMES_CX_MAPPINGS", raising=False)
    monkeypatch.delenv(WITH_BUILT_IN, raising=False)
    monkeypatch.setenv("PLOOMES_CX_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return tmp_path


def test_the_ui_of_an_empty_folder_shows_the_built_in_mapping_the_cli_finds_there(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = resolve_mapping("sandbox")  # what `ploomes-cx sync sandbox` finds in this folder
    assert location_mappings(mappings_dir()) == []  # a deployment's code location: its folder only
    monkeypatch.setenv(WITH_BUILT_IN, "1")  # what `ploomes-cx ui` / `demo` set
    assert [x.name for x in location_mappings(mappings_dir())] == ["sandbox"]
    # the demo's UI reads the decisions `ploomes-cx review sandbox` writes in this folder
    assert _shown_folder(m) == elsewhere / "mappings"
    monkeypatch.setenv("PLOOMES_CX_MAPPINGS", str(_shown_folder(m)))
    assert (
        decisions_path(location_mappings(mappings_dir())[0])
        == elsewhere / "mappings" / "sandbox.decisions.csv"
    )


def test_a_mapping_of_the_users_folder_shadows_the_built_in_one_of_its_name(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = elsewhere / "mappings"
    folder.mkdir()
    (folder / "mine.yaml").write_text(write_mapping(elsewhere, "sandbox").read_text())
    monkeypatch.setenv(WITH_BUILT_IN, "1")
    found = location_mappings(folder)
    assert [(x.name, Path(x.source_path).parent) for x in found] == [("sandbox", folder)]
    assert Path(resolve_mapping("sandbox").source_path).parent == folder


def test_dg_in_a_clone_reads_the_projects_mappings_from_any_folder(elsewhere: Path) -> None:
    """`directory: mappings` of the Component is the project's, wherever `dg` was started."""
    defs = dg.load_from_defs_folder(project_root=PROJECT_ROOT)
    assert dg.AssetKey(["sandbox", "stg_clients"]) in defs.resolve_asset_graph().get_all_asset_keys()
