"""CustomerX readings the spec leaves open, run sandbox to sandbox through the CLI (issue 28).

Each test runs the same story under the default and the alternative reading of one switch of
`sandbox/readings.py` and demands the same CustomerX state.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ploomes_cx.cli import main
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
