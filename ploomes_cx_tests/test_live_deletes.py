"""Live sync of deletes and deals leaving won (§4.2 through §4.3): a Lose webhook cancels the
deal's contract, a Delete webhook applies `deletes.policy`, each once, through `listen` alone."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from ploomes_cx.cli import main
from ploomes_cx.live.process import wait_for
from ploomes_cx.runtime.duckdb_io import database_path
from ploomes_cx_tests.conftest import live_mapping

KEY = "whk-SECRET-deletes-0831"
WINDOW = "2026-11-01"
# the story needs a few records of each kind, not the whole 800-person account (issue 29)
pytestmark = pytest.mark.persons(300)


def _contracts_of_the_windows(home: Path, name: str, n: int) -> list[str]:
    """Contracts whose deal the windows extracted (see test_leave_won)."""
    with duckdb.connect(str(database_path(home, name)), read_only=True) as con:
        rows = con.execute(
            f"select c.external_id from {name}.stg_contracts c join {name}.raw_deals d on d.id = c.ploomes_id "
            f"order by 1 limit {n}"
        ).fetchall()
    return [r[0] for r in rows]


def _status(customerx) -> dict[str, str]:
    return {c["external_id_contract"]: c["status"] for c in customerx.store.records["contracts"].values()}


def test_a_lost_deal_and_a_deleted_deal_cancel_their_contracts_once_through_the_webhooks(
    home, tmp_path, ploomes, customerx, monkeypatch, listener_of
):
    path = live_mapping(monkeypatch, ploomes, customerx, tmp_path, "gone", KEY)
    lost, deleted = _contracts_of_the_windows(home, "gone", 2)
    before = _status(customerx)
    listener = listener_of(path)
    assert main(["webhooks", "register", path, "--url", listener.url]) == 0
    writes = len(customerx.writes)

    ploomes.touch("deals", int(lost), {"StatusId": 3})
    ploomes.delete("deals", int(deleted))
    wait_for(lambda: listener.health()["done"] == 2, what="both events processed")
    wait_for(lambda: listener.health()["claimed"] == 0, what="no batch under way")
    after = _status(customerx)
    assert (after[lost], after[deleted]) == ("canceled", "canceled")
    assert {k: v for k, v in after.items() if k not in (lost, deleted)} == {
        k: v for k, v in before.items() if k not in (lost, deleted)
    }
    calls = [(w["method"], w["path"]) for w in customerx.writes[writes:]]
    assert calls == [("POST", "/api/v1/cancel_contracts")] * 2, calls
    out = listener.stop()
    assert "FAILED" not in out

    # the next window run writes nothing for either: the lost deal is staged as lost, the
    # deleted one is known gone
    writes = len(customerx.writes)
    assert main(["sync", path, "--window", WINDOW]) == 0
    assert customerx.writes[writes:] == []
    with duckdb.connect(str(database_path(home, "gone")), read_only=True) as con:
        gone = con.execute("select ploomes_set, ploomes_id from gone.ploomes_gone").fetchall()
    assert gone == [("/Deals", int(deleted))]
