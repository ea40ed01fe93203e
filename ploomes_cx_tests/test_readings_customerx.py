"""CustomerX readings the spec leaves open, run sandbox to sandbox through the CLI (issue 28).

Each test runs the same story under the default and the alternative reading of one switch of
`sandbox/readings.py` and demands the same CustomerX state.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from ploomes_cx.cli import main
from ploomes_cx.runtime.duckdb_io import database_path
from ploomes_cx.sandbox import CustomerXSandbox, PloomesDataset, PloomesSandbox
from ploomes_cx.sandbox.clock import to_ms
from ploomes_cx.sandbox.readings import READINGS
from ploomes_cx_tests.conftest import CX_TOKEN, SECRET_KEY, local, point_at, write_mapping

SEGMENTO = "contact_0A1B2C3D-0000-0000-0000-00000000000A"


def _segmento(record: dict) -> str | None:
    values = [a["value"] for a in record.get("custom_attributes") or [] if a["name"] == "segmento"]
    return values[0] if values and values[0] not in (None, "") else None


@pytest.mark.parametrize("reading", READINGS["attributes"].values)
def test_a_custom_field_emptied_in_ploomes_is_empty_in_customerx_whether_it_replaces_or_merges(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch, reading: str
) -> None:
    """customerx-api.md §8.6: whether an update replaces the attribute list or merges it by name is
    not documented. Under `merge` an attribute left out of the body keeps its old value, so the
    emptied field must be sent as `""` (§3: a key sent as `""` is cleared)."""
    dataset = PloomesDataset(persons=200, seed=5)
    with (
        PloomesSandbox(dataset, user_key=SECRET_KEY, requests_per_minute=60_000, burst=1000) as ploomes,
        CustomerXSandbox(
            token=CX_TOKEN, requests_per_minute=60_000, burst=1000, readings={"attributes": reading}
        ) as cx,
    ):
        point_at(monkeypatch, ploomes, cx)
        path = str(write_mapping(tmp_path, "cleared", "quality:\n  max_rejected_ratio: 0.9\n"))
        assert main(["sync", path, "--window", "2026-11-01"]) == 0
        table = dataset.tables["contacts"]
        day_two = to_ms(local(2026, 11, 2))
        holding = [
            c
            for c in cx.store.records["clients"].values()
            if _segmento(c)
            and table.cols["LastUpdateDate"][table.index_of(int(c["external_id_client"]))] < day_two
        ]
        assert holding, "no client changed on day one holds a segmento: the story needs one"
        org = int(holding[0]["external_id_client"])
        record = dataset.render("contacts", table.index_of(org), with_offset=False)
        kept = [p for p in record["OtherProperties"] if p["FieldKey"] != SEGMENTO]
        ploomes.touch("contacts", org, {"OtherProperties": kept}, to_ms(local(2026, 11, 2, 10)))

        assert main(["sync", path, "--window", "2026-11-02"]) == 0
        client = next(c for c in cx.store.records["clients"].values() if c["external_id_client"] == str(org))
        assert _segmento(client) is None
        others = [c for c in holding[1:] if _segmento(cx.store.records["clients"][c["id"]])]
        assert len(others) == len(holding) - 1  # nobody else lost theirs
        writes = len(cx.writes)
        assert main(["sync", path, "--window", "2026-11-02"]) == 0
        assert cx.writes[writes:] == []  # the empty value is in the hash: nothing to send again


def _reconcile_story(
    tmp_path: Path,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    reading: str,
    removed_by_hand: bool = False,
    renamed_by_hand: bool = False,
) -> tuple[CustomerXSandbox, str, list[tuple], int]:
    """An organization synced, then deleted in Ploomes, then `reconcile` with deletes.policy: delete.
    Returns the CustomerX sandbox (stopped), the organization, its ledger rows and the exit code."""
    dataset = PloomesDataset(persons=150, seed=3)
    with (
        PloomesSandbox(dataset, user_key=SECRET_KEY, requests_per_minute=60_000, burst=1000) as ploomes,
        CustomerXSandbox(
            token=CX_TOKEN,
            requests_per_minute=60_000,
            burst=1000,
            readings={"delete_by_external_id": reading},
        ) as cx,
    ):
        point_at(monkeypatch, ploomes, cx)
        extra = "quality:\n  max_rejected_ratio: 0.9\ndeletes:\n  policy: delete\n  max_share: 0.5\n"
        path = str(write_mapping(tmp_path, "purge", extra))
        assert main(["sync", path, "--window", "2026-11-01"]) == 0
        held = {c["external_id_client"]: i for i, c in cx.store.records["clients"].items()}
        children = {
            c.get("client_id") for r in ("contacts", "contracts") for c in cx.store.records[r].values()
        }
        org = next(ext for ext, i in sorted(held.items()) if i not in children)  # a client alone
        ploomes.dataset.delete("contacts", int(org))
        if removed_by_hand:
            del cx.store.records["clients"][held[org]]
        if renamed_by_hand:  # someone typed another "Código" in CustomerX's UI
            cx.store.records["clients"][held[org]]["external_id_client"] = "CODIGO-MANUAL"
        code = main(["reconcile", path])
        with duckdb.connect(str(database_path(home, "purge")), read_only=True) as con:
            rows = con.execute(
                "select outcome, detail from purge.ledger where external_id = ? and entity = 'clients' "
                "and outcome in ('deleted', 'already_absent', 'rejected', 'failed')",
                [org],
            ).fetchall()
            kept = con.execute("select count(*) from purge.crosswalk where external_id = ?", [org]).fetchone()
        return cx, org, [*rows, ("crosswalk rows", kept[0])], code


@pytest.mark.parametrize("reading", READINGS["delete_by_external_id"].values)
def test_a_client_gone_from_ploomes_is_deleted_whether_or_not_the_route_by_external_id_exists(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch, reading: str
) -> None:
    """customerx-api.md §7: delete by external id is known from a catalogue only; §6: a 404 also
    means a wrong path. A 404 is confirmed by a read, and the record deleted by its id."""
    cx, org, rows, code = _reconcile_story(tmp_path, home, monkeypatch, reading)
    assert code == 0
    assert org not in {c["external_id_client"] for c in cx.store.records["clients"].values()}
    assert [r[0] for r in rows] == ["deleted", "crosswalk rows"] and rows[-1][1] == 0
    deletes = [(w["path"], w["status"]) for w in cx.writes if w["method"] == "DELETE"]
    if reading == "404":
        assert deletes == [
            (f"/api/v1/clients?external_id_client={org}", 404),
            (f"/api/v1/clients/{deletes[1][0].split('/')[-1]}", 200),
        ]
        assert "by its CustomerX id" in rows[0][1]
    else:
        assert deletes == [(f"/api/v1/clients?external_id_client={org}", 200)]


@pytest.mark.parametrize("reading", READINGS["delete_by_external_id"].values)
def test_a_client_removed_by_hand_is_absent_only_after_a_read_says_so(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch, reading: str
) -> None:
    cx, _, rows, code = _reconcile_story(tmp_path, home, monkeypatch, reading, removed_by_hand=True)
    assert code == 0
    assert [r[0] for r in rows] == ["already_absent", "crosswalk rows"] and rows[-1][1] == 0
    assert "holds it neither by external id nor by id" in rows[0][1]
    reads = [p for _, method, p in cx.requests if method == "GET" and "external_id_client=" in p]
    assert reads, "absence was not confirmed by a read"


def test_a_404_for_a_client_customerx_keeps_is_a_clear_error_and_nothing_is_forgotten(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The route by external id answers 404 and the delete by id is refused: the ledger says
    rejected with what to check, never absent, and the crosswalk keeps the record."""
    original = CustomerXSandbox.handle

    def refuse_numeric_delete(self, method, resource, ext_in_path, query, body):  # type: ignore[no-untyped-def]
        if method == "DELETE" and ext_in_path:
            from ploomes_cx.sandbox.customerx_values import Refused

            raise Refused(405, {}, "method not allowed")
        return original(self, method, resource, ext_in_path, query, body)

    monkeypatch.setattr(CustomerXSandbox, "handle", refuse_numeric_delete)
    cx, org, rows, code = _reconcile_story(tmp_path, home, monkeypatch, "404")
    assert code != 0, (rows, [(w["path"], w["status"]) for w in cx.writes if w["method"] == "DELETE"])
    assert org in {c["external_id_client"] for c in cx.store.records["clients"].values()}
    assert rows[0][0] == "rejected" and "customerx.endpoints" in rows[0][1] and rows[-1][1] == 1


def test_a_404_for_a_client_whose_external_id_was_changed_by_hand_deletes_nothing(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by its CustomerX id, the record now carries someone else's external id: it may no
    longer be ours, so it is kept, and the ledger says why."""
    cx, _, rows, code = _reconcile_story(tmp_path, home, monkeypatch, "404", renamed_by_hand=True)
    assert code != 0
    assert "CODIGO-MANUAL" in {c["external_id_client"] for c in cx.store.records["clients"].values()}
    assert rows[0][0] == "rejected" and "CODIGO-MANUAL" in rows[0][1] and rows[-1][1] == 1
