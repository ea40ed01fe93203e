"""The test matrix of issue 28: one story, run under the default reading of both APIs and under the
alternative reading of each switch (`sandbox/readings.py`), must leave CustomerX in the same state
with the same writes landed.

The story, through the CLI over real HTTP: a first sync; the crosswalk a run killed mid-load
leaves behind (rows `pending`: their POSTs landed, their answers never recorded); a change, a
cleared custom field and a deleted organization in Ploomes; the next window, which resumes and
syncs the change; a reconcile with `deletes.policy: delete`; the window again, which must write
nothing. A reading may cost refused calls of its own (a 404 before a delete by id, a 409 before a
re-read) and reads, never a write more that lands.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ploomes_cx.cli import main
from ploomes_cx.runtime.duckdb_io import database_path
from ploomes_cx.sandbox import CustomerXSandbox, PloomesDataset, PloomesSandbox
from ploomes_cx.sandbox.clock import to_ms
from ploomes_cx.sandbox.readings import READINGS, alternatives
from ploomes_cx_tests.conftest import CX_TOKEN, SECRET_KEY, local, write_mapping
from ploomes_cx_tests.helpers import cx_state

# one worker runs this module (make test: --dist loadgroup), so its default story (`default_story`) is made once, not once per worker
pytestmark = pytest.mark.xdist_group("readings_matrix")
SEGMENTO = "contact_0A1B2C3D-0000-0000-0000-00000000000A"
# the crosswalk rows a kill between a POST and its answer leaves, per entity
KILLED = {"clients": 3, "contacts": 3, "contracts": 2, "timeline": 4}
EXTRA = """\
quality:
  max_rejected_ratio: 0.9
deletes:
  policy: delete
  max_share: 0.5
"""
# a user-type field beside write_mapping's segmento (an option list)
USER_FIELD = """\
    - ploomes: contact_0A1B2C3D-0000-0000-0000-000000000014
      customerx: responsavel
"""


def _env(ploomes: PloomesSandbox, cx: CustomerXSandbox, home: Path) -> dict[str, str]:
    return {
        "PLOOMES_CX_HOME": str(home),
        "PLOOMES_BASE_URL": ploomes.url,
        "PLOOMES_USER_KEY": SECRET_KEY,
        "CUSTOMERX_BASE_URL": cx.url,
        "CUSTOMERX_TOKEN": CX_TOKEN,
    }


def _kill_leftovers(home: Path, name: str) -> None:
    """The crosswalk a SIGKILL between POSTs and their recorded answers leaves: the rows of the
    last records sent are `pending`, with no CustomerX id, hash or body."""
    with duckdb.connect(str(database_path(home, name))) as con:
        for entity, n in KILLED.items():
            con.execute(
                f"""update {name}.crosswalk set state = 'pending', customerx_id = null, content_hash = null,
                    body = null where entity = ? and external_id in (select external_id from {name}.crosswalk
                    where entity = ? and state = 'sent' order by external_id desc limit {n})""",
                [entity, entity],
            )


def _change_ploomes(ploomes: PloomesSandbox, cx: CustomerXSandbox) -> None:
    """On day two: an organization renamed, another's segmento cleared, a third deleted."""
    dataset, when = ploomes.dataset, to_ms(local(2026, 11, 2, 10))
    table, day_two = dataset.tables["contacts"], to_ms(local(2026, 11, 2))
    orgs = sorted(
        int(c["external_id_client"])
        for c in cx.store.records["clients"].values()
        if table.cols["LastUpdateDate"][table.index_of(int(c["external_id_client"]))] < day_two
    )
    with_segment = [
        o
        for o in orgs
        if any(
            p["FieldKey"] == SEGMENTO and p.get("ObjectValueName")
            for p in dataset.render("contacts", table.index_of(o), with_offset=False)["OtherProperties"]
        )
    ]
    renamed, cleared = orgs[0], with_segment[-1]
    assert renamed != cleared
    ploomes.touch("contacts", renamed, {"Name": "Empresa Renomeada Ltda"}, when)
    record = dataset.render("contacts", table.index_of(cleared), with_offset=False)
    kept = [p for p in record["OtherProperties"] if p["FieldKey"] != SEGMENTO]
    ploomes.touch("contacts", cleared, {"OtherProperties": kept}, when)
    ploomes.delete("contacts", orgs[1], when)


def _state(cx: CustomerXSandbox) -> dict[str, Any]:
    """What CustomerX holds (`cx_state`), with custom attribute values and timeline text."""
    records = cx.store.records
    attributes = sorted(
        (r.get("external_id_client") or r.get("external_id_contract"), a["name"], a["value"])
        for kind in ("clients", "contracts")
        for r in records[kind].values()
        for a in r.get("custom_attributes") or []
        if a.get("value") not in (None, "")
    )
    bodies = sorted(
        (t.get("external_id_client"), t["title"], t.get("body")) for t in records["timelines"].values()
    )
    return {**cx_state(cx), "attributes": attributes, "timeline_bodies": bodies}


def _story(folder: Path, readings: dict[str, str]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The story under `readings`: CustomerX's state and the writes that landed (method, path)."""
    ploomes_readings = {k: v for k, v in readings.items() if READINGS[k].api == "ploomes"}
    cx_readings = {k: v for k, v in readings.items() if READINGS[k].api == "customerx"}
    folder.mkdir(parents=True)
    home = folder / "state"
    with (
        PloomesSandbox(
            PloomesDataset(persons=90, seed=13),
            user_key=SECRET_KEY,
            requests_per_minute=60_000,
            burst=1000,
            readings=ploomes_readings,
        ) as ploomes,
        CustomerXSandbox(token=CX_TOKEN, requests_per_minute=60_000, burst=1000, readings=cx_readings) as cx,
        pytest.MonkeyPatch.context() as mp,
    ):
        for k, v in _env(ploomes, cx, home).items():
            mp.setenv(k, v)
        mp.delenv("DAGSTER_HOME", raising=False)
        mapping = write_mapping(folder, "matrix", EXTRA)
        mapping.write_text(
            mapping.read_text().replace("customerx: segmento\n", "customerx: segmento\n" + USER_FIELD)
        )
        path = str(mapping)
        assert main(["sync", path, "--window", "2026-11-01"]) == 0
        _kill_leftovers(home, "matrix")
        _change_ploomes(ploomes, cx)
        assert main(["sync", path, "--window", "2026-11-02"]) == 0
        assert main(["reconcile", path]) == 0
        writes = len(cx.writes)
        assert main(["sync", path, "--window", "2026-11-01..2026-11-02"]) == 0
        assert cx.writes[writes:] == [], f"a sync after the story wrote again under {readings}"
        landed = sorted(
            (w["method"], w["path"].split("?")[0].rstrip("/0123456789")) for w in cx.successful_writes()
        )
        return _state(cx), landed


@cache
def _default(folder: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    return _story(Path(folder), {})


@pytest.fixture(scope="module")
def default_story(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    return _default(str(tmp_path_factory.mktemp("default") / "story"))


def _matrix() -> list[dict[str, str]]:
    """The readings each story runs under. By default every alternative reading is covered by the
    fewest stories: the n-th story plays the n-th alternative of every switch that has one, all at
    once (two stories today), so `make test` stays fast; the per-switch tests beside this one
    (test_readings_*.py, test_timeline_once.py) tell which switch a failure comes from.
    PLOOMES_CX_READINGS_MATRIX=full runs one story per alternative, alone (`make test-readings`)."""
    if os.environ.get("PLOOMES_CX_READINGS_MATRIX") == "full":
        return [{switch: value} for switch, value in alternatives()]
    depth = max(len(r.alternatives) for r in READINGS.values())
    return [
        {r.name: r.alternatives[n] for r in READINGS.values() if len(r.alternatives) > n}
        for n in range(depth)
    ]


@pytest.mark.parametrize("readings", _matrix(), ids=lambda r: ",".join(f"{k}={v}" for k, v in r.items()))
def test_every_reading_ends_in_the_default_readings_customerx_state_with_the_same_writes(
    tmp_path: Path, default_story: tuple[dict[str, Any], list[tuple[str, str]]], readings: dict[str, str]
) -> None:
    state, landed = _story(tmp_path / "story", readings)
    expected_state, expected_landed = default_story
    assert state["clients"], "the story synced nothing"
    for part in expected_state:
        assert state[part] == expected_state[part], f"{readings}: CustomerX {part} differ"
    assert landed == expected_landed, f"{readings}: other writes landed"
