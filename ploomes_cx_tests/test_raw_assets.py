"""Raw extract assets through Dagster: sandbox over HTTP -> partitioned DuckDB tables."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster import serialize_value

from ploomes_cx.cli import main
from ploomes_cx.factory import build_integration_defs
from ploomes_cx.mapping import load_mapping
from ploomes_cx.partitions import window_keys
from ploomes_cx.runner import run_windows
from ploomes_cx.runtime.duckdb_io import database_path
from ploomes_cx.sandbox import PloomesSandbox
from ploomes_cx.sandbox.clock import to_ms
from ploomes_cx_tests.conftest import CX_TOKEN, SECRET_KEY, local, point_at, write_mapping

ENTITIES = ["organizations", "persons", "deals", "notes", "tasks", "attachments"]


def table_ids(home: Path, mapping: str, entity: str, window: str) -> list[int]:
    with duckdb.connect(str(database_path(home, mapping)), read_only=True) as con:
        rows = con.execute(
            f"select id from {mapping}.raw_{entity} where window_start = ?::timestamp order by id", [window]
        ).fetchall()
    return [r[0] for r in rows]


def day(n: int) -> tuple[dt.datetime, dt.datetime]:
    return local(2026, 11, n), local(2026, 11, n + 1)


@pytest.mark.persons(150)  # each entity has rows in both windows at 150: its size proves nothing (issue 29)
def test_sync_job_extracts_every_entity_into_its_partition(home, mapping, ploomes, sandbox_environ):
    results = run_windows(mapping, ["2026-11-02", "2026-11-03"])
    assert [r.success for r in results] == [True]  # one run extracts both windows (issue 14, part 1)
    for n, key in ((2, "2026-11-02"), (3, "2026-11-03")):
        for entity in ENTITIES:
            expected = sorted(ploomes.dataset.expected_ids(entity, *day(n)))
            assert table_ids(home, "acme", entity, f"{key} 00:00:00") == expected, (entity, key)
    persons = [len(ploomes.dataset.expected_ids("persons", *day(n))) for n in (2, 3)]
    assert results[0].counts["persons"]["extracted"] == sum(persons)

    instance = dg.DagsterInstance.get()
    event = instance.get_latest_materialization_event(dg.AssetKey(["acme", "raw_persons"]))
    meta = event.asset_materialization.metadata
    assert meta["requests"].value >= meta["pages"].value >= 1
    assert meta["retries"].value == 0
    assert meta["window"].value == "[2026-11-02T00:00:00-03:00, 2026-11-04T00:00:00-03:00)"
    assert meta["records_by_window"].value == {"2026-11-02": persons[0], "2026-11-03": persons[1]}
    assert meta["records"].value == sum(persons)
    runs = instance.get_runs()
    assert [
        (r.tags.get("dagster/asset_partition_range_start"), r.tags.get("dagster/asset_partition_range_end"))
        for r in runs
    ] == [("2026-11-02", "2026-11-03")]
    assert instance.get_materialized_partitions(dg.AssetKey(["acme", "raw_persons"])) == {
        "2026-11-02",
        "2026-11-03",
    }


@pytest.mark.persons(150)  # one person moved to another window: its size proves nothing (issue 29)
def test_rematerializing_a_window_replaces_only_that_window(home, mapping, ploomes, sandbox_environ):
    assert all(r.success for r in run_windows(mapping, ["2026-11-02", "2026-11-03"]))
    before_day3 = table_ids(home, "acme", "persons", "2026-11-03 00:00:00")
    moved = ploomes.dataset.expected_ids("persons", *day(2))[0]
    ploomes.dataset.set_date("contacts", moved, "LastUpdateDate", to_ms(local(2026, 11, 3, 12)))

    assert run_windows(mapping, ["2026-11-02"])[0].success
    day2 = table_ids(home, "acme", "persons", "2026-11-02 00:00:00")
    assert moved not in day2
    assert day2 == sorted(ploomes.dataset.expected_ids("persons", *day(2)))
    assert table_ids(home, "acme", "persons", "2026-11-03 00:00:00") == before_day3  # untouched


@pytest.mark.persons(150)  # a window past the account's changes: the account's size proves nothing (issue 29)
def test_a_window_with_no_records_still_creates_empty_tables(home, mapping, ploomes, sandbox_environ):
    assert run_windows(mapping, ["2026-11-20"])[0].success
    for entity in ENTITIES:
        assert table_ids(home, "acme", entity, "2026-11-20 00:00:00") == []


@pytest.mark.persons(150)  # where the key shows up: the account's size proves nothing (issue 29)
def test_the_key_appears_in_no_output_log_metadata_or_state(
    home, mapping, ploomes, sandbox_environ, capfd, caplog
):
    ploomes.faults.inject("500", times=1)
    ploomes.faults.inject("429", times=1, retry_after=1)
    assert main(["sync", mapping.source_path, "--window", "2026-11-02"]) == 0
    assert len(ploomes.requests) > 5  # the key was used
    out, err = capfd.readouterr()
    for secret in (SECRET_KEY, CX_TOKEN):
        assert secret not in out + err + caplog.text
    instance = dg.DagsterInstance.get()
    (run,) = instance.get_runs()
    logs = [serialize_value(record) for record in instance.all_logs(run.run_id)]
    assert (
        sum("HTTP 500; retry" in x or "HTTP 429; retry" in x for x in logs) == 2
    )  # retries are in the run log
    for text in logs:
        assert SECRET_KEY not in text and CX_TOKEN not in text
    assert SECRET_KEY not in serialize_value(run)
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert SECRET_KEY.encode() not in data and CX_TOKEN.encode() not in data, path


@pytest.mark.persons(150)  # one refused request: the account's size proves nothing (issue 29)
def test_wrong_key_fails_with_exit_3_naming_the_variable(
    home, mapping, ploomes, sandbox_environ, monkeypatch, capsys
):
    monkeypatch.setenv("PLOOMES_USER_KEY", "wrong-key-123")
    assert main(["sync", mapping.source_path, "--window", "2026-11-02..2026-11-03"]) == 3
    err = capsys.readouterr().err
    assert "$PLOOMES_USER_KEY" in err and "HTTP 401" in err
    assert "wrong-key-123" not in err and "Traceback" not in err
    # one run covered both windows: none is left for later (it once said "1 later window(s)")
    assert "window 2026-11-02..2026-11-03 failed." in err and "later window" not in err
    assert len(ploomes.requests) == 1  # refused once, never retried


@pytest.mark.persons(150)  # no request at all: the account's size proves nothing (issue 29)
def test_missing_variable_exits_3_naming_it(home, mapping, ploomes, sandbox_environ, monkeypatch, capsys):
    monkeypatch.delenv("PLOOMES_USER_KEY")
    assert main(["sync", mapping.source_path, "--window", "2026-11-02"]) == 3
    assert "$PLOOMES_USER_KEY" in capsys.readouterr().err
    assert ploomes.requests == []


@pytest.mark.persons(150)  # a mapping error: the account's size proves nothing (issue 29)
def test_unknown_custom_field_key_is_a_mapping_error(home, tmp_path, ploomes, customerx, monkeypatch, capsys):
    path = write_mapping(
        tmp_path,
        "typo",
        """\
        external_code_field: contact_0A1B2C3D-0000-0000-0000-00000000000D
        """,
    )
    path.write_text(path.read_text().replace("00000000000A", "0000000000AA"))
    m = load_mapping(path)
    point_at(monkeypatch, ploomes, customerx)
    assert main(["sync", str(path), "--window", "2026-11-02"]) == 2
    err = capsys.readouterr().err
    assert "custom_fields.clients[0].ploomes" in err and "contact_0A1B2C3D-0000-0000-0000-0000000000AA" in err
    assert "is not a field of this Ploomes account" in err
    assert m.external_code_field not in err.split("fields of this account")[0]  # a valid key is not reported


def test_cli_sync_prints_a_summary_and_runs_land_on_the_instance(
    home, mapping, ploomes, sandbox_environ, capsys
):
    assert main(["sync", mapping.source_path, "--window", "2026-11-04..2026-11-06"]) == 0
    out = capsys.readouterr().out
    # the range is one run: its three windows extracted, then staged and loaded once
    assert len(re.findall(r"window 2026-11-04\.\.2026-11-06: ok in", out)) == 1
    assert len(re.findall(r"window 2026-11-0\d\.\.2026-11-0\d: running \(run ", out)) == 1
    # live progress: one line per finished step (a raw asset's three windows are one line)
    assert len(re.findall(r"\[ *[\d.]+s\] raw_persons: \d+ extracted", out)) == 1
    assert len(re.findall(r"load_clients: \d+ created, \d+ updated, \d+ unchanged, 0 failed", out)) == 1
    window = out.split("window 2026-11-04..2026-11-06: running")[1].split(
        "window 2026-11-04..2026-11-06: ok"
    )[0]
    assert window.index("raw_persons") < window.index("stg_clients") < window.index("load_clients")
    # a load step long enough to wait on says where it is, with the ETA at the CustomerX pace
    eta = re.findall(r"load_(\w+): ([\d,]+) of ([\d,]+) records, ETA (?:<1m|\d+m|\d+h\d\dm) at 6000/min", out)
    assert eta and all(0 < int(done.replace(",", "")) < int(total.replace(",", "")) for _, done, total in eta)
    persons = sum(len(ploomes.dataset.expected_ids("persons", *day(n))) for n in (4, 5, 6))
    line = next(x for x in out.splitlines() if x.startswith("persons"))
    assert line.split()[1] == str(persons)
    assert len(dg.DagsterInstance.get().get_runs()) == 1
    assert (home / "dagster" / "dagster.yaml").exists()


def test_each_mapping_file_adds_its_own_prefixed_asset_graph(tmp_path, monkeypatch, home):
    write_mapping(tmp_path, "north")
    write_mapping(tmp_path, "south", "timeline: []\ncontracts:\n  source: deal_products\n")
    monkeypatch.setenv("PLOOMES_CX_MAPPINGS", str(tmp_path))
    from ploomes_cx.definitions import defs

    loaded = defs()
    keys = {k.to_user_string() for k in loaded.resolve_all_asset_keys()}
    north = {k for k in keys if k.startswith("north/")}
    south = {k for k in keys if k.startswith("south/")}
    assert north | south == keys and north and south
    assert "north/raw_notes" in north and "south/raw_notes" not in south
    assert {"south/raw_orders", "south/raw_quotes"} <= south
    assert loaded.resolve_job_def("north_sync") and loaded.resolve_job_def("south_sync")
    groups = {loaded.resolve_assets_def(k).group_names_by_key[k] for k in loaded.resolve_all_asset_keys()}
    assert groups == {
        f"{n}_{layer}" for n in ("north", "south") for layer in ("raw", "staging", "load", "live")
    }
    assert loaded.resolve_job_def("north_live") and loaded.resolve_sensor_def("south_live_sensor")


def test_hourly_mapping_partitions_follow_its_timezone(tmp_path):
    path = tmp_path / "hourly.yaml"
    path.write_text(
        'name: hourly\nsync:\n  cadence: hourly\n  start: "2026-11-01"\n  timezone: America/Manaus\n'
    )
    m = load_mapping(path)
    parts = build_integration_defs(m).resolve_job_def("hourly_sync").partitions_def
    window = parts.time_window_for_partition_key("2026-11-01-14:00")
    assert window.start.isoformat() == "2026-11-01T14:00:00-04:00"
    assert len(window_keys(m, "2026-11-01")) == 24
    assert window_keys(m, "2026-11-01-22:00..2026-11-02-01:00") == [
        "2026-11-01-22:00",
        "2026-11-01-23:00",
        "2026-11-02-00:00",
        "2026-11-02-01:00",
    ]


@pytest.mark.persons(150)  # how dates are read: the account's size proves nothing (issue 29)
def test_offset_less_dates_are_read_as_account_local_time(home, mapping, dataset, customerx, monkeypatch):
    """(I) Ploomes may send dates without an offset; the sandbox can too, and windows stay right."""
    with PloomesSandbox(
        dataset, user_key=SECRET_KEY, requests_per_minute=60_000, burst=1000, date_offsets=False
    ) as s:
        sample = s.list_entity("Contacts", {"$top": "1"})[1]["value"][0]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", sample["LastUpdateDate"])
        point_at(monkeypatch, s, customerx)
        result = run_windows(mapping, ["2026-11-02"])[0]
    assert result.success
    for entity in ENTITIES:
        assert table_ids(home, "acme", entity, "2026-11-02 00:00:00") == sorted(
            dataset.expected_ids(entity, *day(2))
        )
    with duckdb.connect(str(database_path(home, "acme")), read_only=True) as con:
        lo, hi = con.execute("select min(changed_at), max(changed_at) from acme.raw_persons").fetchone()
    assert dt.datetime(2026, 11, 2) <= lo <= hi < dt.datetime(2026, 11, 3)


@pytest.mark.persons(150)  # 4 orders and 6 quotes that day: the account's size proves nothing (issue 29)
def test_deal_products_mapping_extracts_orders_and_quotes_with_their_lines(
    home, tmp_path, ploomes, customerx, monkeypatch
):
    m = load_mapping(
        write_mapping(tmp_path, "products", "contracts:\n  source: deal_products\ntimeline: []\n")
    )
    point_at(monkeypatch, ploomes, customerx)
    assert run_windows(m, ["2026-11-02"])[0].success
    for entity in ("orders", "quotes"):
        expected = sorted(ploomes.dataset.expected_ids(entity, *day(2)))
        assert expected and table_ids(home, "products", entity, "2026-11-02 00:00:00") == expected
    with duckdb.connect(str(database_path(home, "products")), read_only=True) as con:
        lines = con.execute(
            "select sum(json_array_length(payload->'$.Products')), count(*) filter (where payload->>'$.Products[0].Product.Code' is null) from products.raw_orders"
        ).fetchone()
    assert lines[0] > 0 and lines[1] == 0  # every order carries its lines, each with its product
