"""Each raw row carries a digest of its payload, made when it was read (`raw/frames.py`), so a
staging finds the records that changed since the last one by reading that column alone instead
of every payload (`reach.refresh_seen`). Rows written before the column existed get one once."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pandas as pd

from ploomes_cx.live.assets import _append as append_live
from ploomes_cx.mapping import parse_mapping
from ploomes_cx.raw.frames import Fetched, dependency_frame, payload_digest, raw_frame
from ploomes_cx.raw.needs import LIVE_TABLE
from ploomes_cx.runtime.duckdb_io import has_column
from ploomes_cx.staging import reach

SP = ZoneInfo("America/Sao_Paulo")
WINDOW = dg.TimeWindow(dt.datetime(2026, 11, 1, tzinfo=SP), dt.datetime(2026, 11, 2, tzinfo=SP))


def _person(pid: int, name: str) -> dict:
    return {"Id": pid, "TypeId": 2, "Name": name, "LastUpdateDate": "2026-11-01T10:00:00-03:00"}


def test_a_payloads_digest_is_the_same_in_every_process_and_differs_with_its_text() -> None:
    texts = pd.Series(['{"Name":"Ana"}', '{"Name":"Ana "}', None], dtype="string")
    here = payload_digest(texts)
    code = (
        "import pandas as pd; from ploomes_cx.raw.frames import payload_digest; "
        "print(payload_digest(pd.Series(['{\"Name\":\"Ana\"}'], dtype='string'))[0])"
    )
    # another process (another hash seed for Python's own `hash`) gives the same digest
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(there.stdout) == int(here[0])
    assert here[0] != here[1] and pd.isna(here[2])
    rows, _ = raw_frame([_person(7, "Ana")], "LastUpdateDate", WINDOW, SP, "run")
    fetched = dependency_frame(
        [Fetched("persons", 7, _person(7, "Ana"), "deals 1 ContactId")], WINDOW, SP, "r"
    )
    assert rows["digest"][0] == fetched["digest"][0] == payload_digest(rows["payload"])[0]


def test_rows_written_before_digests_get_one_once_and_a_record_read_again_unchanged_is_no_change() -> None:
    m = parse_mapping({"name": "inc", "contracts": {"source": "none"}, "timeline": []}, "test")
    with duckdb.connect() as con:
        con.execute("create schema inc")
        old, _ = raw_frame([_person(7, "Ana"), _person(8, "Bia")], "LastUpdateDate", WINDOW, SP, "old")
        con.register("_rows", old.drop(columns=["digest"]))  # a table an older version wrote
        con.execute("create table inc.raw_persons as select * from _rows")
        con.unregister("_rows")
        assert reach.refresh_seen(con, m) == (None, False)
        assert has_column(con, "inc", "raw_persons", "digest")
        assert con.execute("select count(*) from inc.raw_persons where digest is null").fetchall() == [(0,)]
        # Bia read again unchanged (a new row, its digest made at extraction), Ana renamed
        again, _ = raw_frame(
            [_person(7, "Ana Maria"), _person(8, "Bia")], "LastUpdateDate", WINDOW, SP, "new"
        )
        again["extracted_at"] = again["extracted_at"] + pd.Timedelta(seconds=1)
        con.register("_rows", again)
        con.execute("insert into inc.raw_persons by name select * from _rows")
        con.unregister("_rows")
        seeds, _ = reach.refresh_seen(con, m)
        # Bia's new digest (pandas') is not the backfilled one (DuckDB's): staged again once
        assert seeds is not None and seeds.get("contacts") == {7, 8}
        assert reach.refresh_seen(con, m)[0] == {}  # nothing read since: nothing changed


def test_a_live_table_from_an_older_version_takes_rows_with_a_digest() -> None:
    record = _person(9, "Caio")
    frame = dependency_frame([Fetched("persons", 9, record, "webhook")], WINDOW, SP, "live")
    with duckdb.connect() as con:
        con.execute("create schema inc")
        con.register("_rows", frame.drop(columns=["digest"]))
        con.execute(f"create table inc.{LIVE_TABLE} as select * from _rows")
        con.unregister("_rows")
        append_live(con, "inc", frame)
        rows = con.execute(
            f"select id, digest is null from inc.{LIVE_TABLE} order by digest nulls first"
        ).fetchall()
    assert rows == [(9, True), (9, False)]


def test_the_same_text_in_another_window_is_a_change_for_staging() -> None:
    """Staged rows carry their record's window (`window_start`): a record whose latest version
    becomes the same text stored for another window (a parent fetched by Id for a later window,
    read after the window extract) changed for staging, though its payload did not."""
    m = parse_mapping({"name": "inc", "contracts": {"source": "none"}, "timeline": []}, "test")
    org = {"Id": 5, "TypeId": 1, "Name": "Acme", "LastUpdateDate": "2026-11-01T10:00:00-03:00"}
    with duckdb.connect() as con:
        con.execute("create schema inc")
        rows, _ = raw_frame([org], "LastUpdateDate", WINDOW, SP, "window")
        con.register("_rows", rows)
        con.execute("create table inc.raw_organizations as select * from _rows")
        con.unregister("_rows")
        reach.refresh_seen(con, m)
        later = dg.TimeWindow(dt.datetime(2026, 12, 5, tzinfo=SP), dt.datetime(2026, 12, 6, tzinfo=SP))
        fetched = dependency_frame(
            [Fetched("organizations", 5, org, "persons 9 CompanyId")], later, SP, "deps"
        )
        assert fetched["digest"][0] == rows["digest"][0]  # the same text
        con.register("_rows", fetched)
        con.execute("create table inc.raw_dependencies as select * from _rows")
        con.unregister("_rows")
        seeds, _ = reach.refresh_seen(con, m)
    assert seeds == {"contacts": {5}}
