"""Deals that leave won (§4.2): their contracts cancelled in CustomerX once, or kept and listed;
a deal won again gets its contract back. Sandbox to sandbox over real HTTP, through the CLI."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from ploomes_cx.cli import main
from ploomes_cx.runtime.duckdb_io import database_path
from ploomes_cx.sandbox.clock import to_ms
from ploomes_cx_tests.conftest import local, point_at, write_mapping

LOOSE = "quality:\n  max_rejected_ratio: 0.9\n"
WINDOW = "2026-11-02"
# the story needs a few records of each kind, not the whole 800-person account (issue 29)
pytestmark = pytest.mark.persons(150)


def _won_deal_of_the_window(home: Path, name: str) -> str:
    """A contract whose deal the window itself extracted (a parent fetched by Id carries a later,
    sandbox-future change date, which a change dated in the window would not beat)."""
    with duckdb.connect(str(database_path(home, name)), read_only=True) as con:
        return con.execute(
            f"select c.external_id from {name}.stg_contracts c join {name}.raw_deals d on d.id = c.ploomes_id "
            "order by 1 limit 1"
        ).fetchall()[0][0]


def _contracts(customerx) -> dict[str, dict]:
    return {c["external_id_contract"]: dict(c) for c in customerx.store.records["contracts"].values()}


def _outcomes(home: Path, name: str, ext: str) -> list[str]:
    with duckdb.connect(str(database_path(home, name)), read_only=True) as con:
        rows = con.execute(
            f"select outcome from {name}.ledger where entity = 'contracts' and external_id = ? order by recorded_at",
            [ext],
        ).fetchall()
    return [r[0] for r in rows]


def test_a_lost_deal_cancels_its_contract_once_and_winning_it_again_reactivates_it(
    home, tmp_path, ploomes, customerx, monkeypatch
):
    point_at(monkeypatch, ploomes, customerx)
    path = str(write_mapping(tmp_path, "leave", LOOSE))
    assert main(["sync", path, "--window", WINDOW]) == 0
    ext = _won_deal_of_the_window(home, "leave")
    before = _contracts(customerx)
    assert before[ext]["status"] == "active" and len(before) > 3

    ploomes.dataset.touch("deals", int(ext), {"StatusId": 3}, when_ms=to_ms(local(2026, 11, 2, 16)))
    writes = len(customerx.writes)
    assert main(["sync", path, "--window", WINDOW]) == 0
    new = customerx.writes[writes:]
    assert [(w["method"], w["path"]) for w in new] == [("POST", "/api/v1/cancel_contracts")]
    after = _contracts(customerx)
    assert after[ext]["status"] == "canceled" and after[ext]["cancellation_date"] == "02/11/2026"
    assert {k: v for k, v in after.items() if k != ext} == {k: v for k, v in before.items() if k != ext}

    writes = len(customerx.writes)
    assert main(["sync", path, "--window", WINDOW]) == 0
    assert customerx.writes[writes:] == []  # a re-run makes no write

    ploomes.dataset.touch("deals", int(ext), {"StatusId": 2}, when_ms=to_ms(local(2026, 11, 2, 18)))
    writes = len(customerx.writes)
    assert main(["sync", path, "--window", WINDOW]) == 0
    new = customerx.writes[writes:]
    assert [(w["method"], w["path"]) for w in new] == [("POST", "/api/v1/contracts/reactivate_contract")]
    assert _contracts(customerx)[ext]["status"] == "active"
    assert _outcomes(home, "leave", ext)[-3:] == ["cancelled", "unchanged", "reactivated"]


def test_with_keep_a_lost_deal_keeps_its_contract_and_the_ledger_lists_it(
    home, tmp_path, ploomes, customerx, monkeypatch
):
    point_at(monkeypatch, ploomes, customerx)
    path = str(write_mapping(tmp_path, "keep", LOOSE + "contracts:\n  on_leave_won: keep\n"))
    assert main(["sync", path, "--window", WINDOW]) == 0
    ext = _won_deal_of_the_window(home, "keep")
    ploomes.dataset.touch(
        "deals", int(ext), {"StatusId": 1}, when_ms=to_ms(local(2026, 11, 2, 16))
    )  # reopened
    writes = len(customerx.writes)
    assert main(["sync", path, "--window", WINDOW]) == 0
    assert main(["sync", path, "--window", WINDOW]) == 0
    assert customerx.writes[writes:] == []
    assert _contracts(customerx)[ext]["status"] == "active"
    assert _outcomes(home, "keep", ext)[-2:] == ["left_won", "unchanged"]
