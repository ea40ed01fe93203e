"""The parts of a payload stored apart, `head` (without custom fields) and `custom_values` (the
filled custom-field slots): staging reads from them, and a table written before they existed
stages exactly the same."""

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pandas as pd
import pytest

from ploomes_cx.mapping import parse_mapping
from ploomes_cx.raw.frames import fields_frame, raw_frame
from ploomes_cx.runtime.duckdb_io import PloomesCxDuckDBIOManager
from ploomes_cx.sandbox import PloomesDataset
from ploomes_cx.sandbox.ploomes_fields import fields_catalogue
from ploomes_cx.staging.build import build_staging

SP = ZoneInfo("America/Sao_Paulo")
WINDOW = dg.TimeWindow(dt.datetime(2026, 1, 1, tzinfo=SP), dt.datetime(2026, 12, 1, tzinfo=SP))
MAPPING = {
    "name": "t",
    "timeline": [],
    "contracts": {"source": "won_deals"},
    "custom_fields": {
        "clients": [{"ploomes": "contact_0A1B2C3D-0000-0000-0000-00000000000A", "customerx": "seg"}],
        "contacts": [{"ploomes": "contact_0A1B2C3D-0000-0000-0000-00000000000B", "customerx": "staff"}],
    },
}


def _write(con: duckdb.DuckDBPyConnection, entity: str, records: list[dict], with_head: bool) -> None:
    frame, _ = raw_frame(records, "LastUpdateDate", WINDOW, SP, "test", history=True)
    if not with_head:
        frame = frame.drop(columns=["head", "custom_values"])  # the layout before they existed
    con.register("_rows", frame)
    con.execute(f"create table t.raw_{entity} as select * from _rows")
    con.unregister("_rows")


@pytest.fixture(scope="module")
def sandbox_records() -> dict[str, list[dict]]:
    data = PloomesDataset(persons=600)
    contacts = [data.render("contacts", i) for i in range(len(data.tables["contacts"]))]
    return {
        "organizations": [c for c in contacts if c["TypeId"] == 1],
        "persons": [c for c in contacts if c["TypeId"] == 2],
        "deals": [data.render("deals", i) for i in range(len(data.tables["deals"]))],
    }


def _stage(path: Path, records: dict[str, list[dict]], with_head: bool):
    with duckdb.connect(str(path)) as con:
        con.execute("create schema t")
        for entity, rows in records.items():
            _write(con, entity, rows, with_head)
        con.register("_fields", fields_frame(fields_catalogue(), WINDOW, "test"))
        con.execute("create table t.raw_fields as select * from _fields")
        return build_staging(con, parse_mapping(MAPPING, "t.yaml"), "r1")


def test_head_and_custom_values_split_the_payload(sandbox_records):
    frame, _ = raw_frame(sandbox_records["persons"][:50], "LastUpdateDate", WINDOW, SP, "test", history=True)
    for payload, head, custom in zip(frame["payload"], frame["head"], frame["custom_values"], strict=True):
        whole = json.loads(payload)
        items = whole.pop("OtherProperties")
        assert any(v is None for item in items for v in item.values())  # every slot, as Ploomes sends
        assert json.loads(head) == whole
        assert json.loads(custom) == [{k: v for k, v in item.items() if v is not None} for item in items]
        assert len(head) + len(custom) < len(payload) / 2
    stamp = "2026-11-02T10:00:00-03:00"
    no_custom = {"Id": 1, "Name": "x", "LastUpdateDate": stamp}
    as_map = {"Id": 2, "Name": "y", "LastUpdateDate": stamp, "OtherProperties": {"contact_A": "z"}}
    frame, _ = raw_frame([no_custom, as_map], "LastUpdateDate", WINDOW, SP, "test")
    assert frame["head"].isna().tolist() == [True, False]
    assert frame["custom_values"].isna().all()  # no list: read from the payload


def test_tables_without_the_parts_stage_exactly_as_tables_with_them(tmp_path, sandbox_records):
    new = _stage(tmp_path / "new.duckdb", sandbox_records, with_head=True)
    old = _stage(tmp_path / "old.duckdb", sandbox_records, with_head=False)
    assert len(new.clients) > 100 and len(new.contacts) > 300 and len(new.contracts) > 10
    for table in (new.clients, new.contacts):  # the custom fields came through
        assert (table["custom_attributes"] != "{}").sum() > len(table) / 2
    assert len(new.rejected) > 0  # the sandbox is dirty: the comparison covers rejections too
    for table in ("clients", "contacts", "contracts", "rejected", "clusters"):
        a, b = getattr(new, table), getattr(old, table)
        pd.testing.assert_frame_equal(
            a.drop(columns=["run_id"], errors="ignore"), b.drop(columns=["run_id"], errors="ignore")
        )
    assert new.counts == old.counts


def test_a_partitioned_table_from_an_older_version_gains_the_new_column(tmp_path):
    """The IO manager adds a column an older version's table lacks, instead of failing the write."""
    days = dg.DailyPartitionsDefinition(start_date="2026-11-01")
    layout = {"columns": ["id"]}

    @dg.asset(
        partitions_def=days,
        key_prefix=["t"],
        io_manager_key="warehouse",
        metadata={"partition_expr": "window_start"},
    )
    def raw_things(context: dg.AssetExecutionContext) -> pd.DataFrame:
        frame = pd.DataFrame({"window_start": [pd.Timestamp(context.partition_key)], "id": [1]})
        if "head" in layout["columns"]:
            frame["head"] = ['{"Id":1}']
        return frame

    io = PloomesCxDuckDBIOManager(database=str(tmp_path / "w.duckdb"))
    for key, columns in (("2026-11-01", ["id"]), ("2026-11-02", ["id", "head"])):
        layout["columns"] = columns
        assert dg.materialize([raw_things], partition_key=key, resources={"warehouse": io}).success
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        rows = con.execute("select window_start::date::varchar, head from t.raw_things order by 1").fetchall()
    assert rows == [("2026-11-01", None), ("2026-11-02", '{"Id":1}')]
