"""Probes and fallbacks (issue 28, point 6 and build point 4), over real HTTP to the sandbox.

Where ploomes-api.md is unsure of a query form, the product probes it once and falls back to a
form the spec confirms; these tests hold each fallback to the same records the preferred form
reads, and the stored decision to what the state folder keeps and re-probes.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from urllib.parse import unquote_plus

import pytest

from ploomes_cx.cli import main
from ploomes_cx.ploomes import probes
from ploomes_cx.ploomes.client import CallStats, PloomesApi
from ploomes_cx.ploomes.deleted_deals import deleted_deals
from ploomes_cx.ploomes.entities import ENTITIES
from ploomes_cx.ploomes.forms import Forms, forms_file
from ploomes_cx.ploomes.windows import read_window
from ploomes_cx.sandbox import CustomerXSandbox, PloomesDataset, PloomesSandbox
from ploomes_cx_tests.conftest import CX_TOKEN, SECRET_KEY, local, point_at

# mostly waiting (pacing, daemons, subprocesses): one worker runs these in turn (conftest.py)
pytestmark = pytest.mark.xdist_group("waits")

FAST = {"requests_per_minute": 60_000, "burst": 1000}
EXPECTED = {  # reading -> (capability, the form chosen under the refusing value)
    ("id_in", "400"): ("id_list", "or"),
    ("orders_quotes_last_update", "400"): ("orders_window", "deals"),
    ("attachments_unscoped", "timeout"): ("attachments_window", "id_windows"),
    ("attachments_unscoped", "400"): ("attachments_window", "id_windows"),
    ("deleted_deals_paging", "400"): ("deleted_deals", "sliced"),
}


def _api(server: PloomesSandbox, forms: Forms | None = None) -> PloomesApi:
    return PloomesApi(
        server.url,
        SECRET_KEY,
        requests_per_minute=60_000,
        max_attempts=2,
        backoff_initial_seconds=0.01,
        forms=forms,
    )


def _asked(server: PloomesSandbox, since: int = 0) -> list[str]:
    return [unquote_plus(path) for _, path in server.requests[since:]]


@pytest.mark.parametrize(("reading", "value"), sorted(EXPECTED))
def test_each_probe_chooses_the_preferred_form_and_the_confirmed_one_when_refused(reading, value):
    capability, fallback = EXPECTED[(reading, value)]
    data = PloomesDataset(persons=60, seed=2)
    with PloomesSandbox(data, user_key=SECRET_KEY, **FAST) as default, _api(default) as api:
        assert probes.probe(api, capability).form == probes.CAPABILITIES[capability][0]
    with PloomesSandbox(data, user_key=SECRET_KEY, readings={reading: value}, **FAST) as server:
        with _api(server) as api:
            assert probes.probe(api, capability).form == fallback
        probed = _asked(server)
    # cheap: one row at most, or (GetDeletedDeals, which takes no paging here) a date no row has
    assert probed and all("$top=1" in p or "ge 2100-01-01" in p for p in probed)


def test_ids_are_asked_one_eq_at_a_time_when_neither_in_nor_or_is_taken():
    """§2: `eq` is confirmed, `or` inferred, `in` absent: the last form is one `Id eq N` per request."""
    data = PloomesDataset(persons=120, seed=3)
    ids = [int(i) for i in data.tables["contacts"].cols["Id"][3:30:4]]
    readings = {"id_in": "400", "or_filter": "400"}
    with PloomesSandbox(data, user_key=SECRET_KEY, readings=readings, **FAST) as server, _api(server) as api:
        got = [r["Id"] for page in api.iter_by_ids("/Contacts", ids, (), CallStats()) for r in page]
        assert sorted(got) == sorted(ids) and api.forms.get("id_list") == "eq"
        asked = [p for p in _asked(server) if "Id eq" in p and "-1" not in p]
    assert len(asked) == len(ids) and not any(" or " in p for p in asked)


@pytest.mark.parametrize("value", ["timeout", "400"])
def test_attachments_walked_in_id_windows_are_the_ones_created_in_the_window(value):
    """§2/§6: unscoped `/Attachments` listings time out; Id windows are fast (C [S6])."""
    data = PloomesDataset(persons=500, seed=4)
    spec, windows = (
        ENTITIES["attachments"],
        [(local(2026, 11, 3), local(2026, 11, 5)), (None, local(2026, 11, 9))],
    )
    with PloomesSandbox(data, user_key=SECRET_KEY, **FAST) as server, _api(server) as api:
        expected = [{r["Id"] for r in read_window(api, spec, s, e, CallStats()).records} for s, e in windows]
    readings = {"attachments_unscoped": value}
    with PloomesSandbox(data, user_key=SECRET_KEY, readings=readings, **FAST) as server, _api(server) as api:
        got = [read_window(api, spec, s, e, CallStats()) for s, e in windows]
        asked = _asked(server)
    assert all(expected) and [{r["Id"] for r in g.records} for g in got] == expected
    assert {g.form for g in got} == {"id_windows"}
    listed = [p for p in asked if p.startswith("/Attachments?") and "$top=1&" not in p]
    assert listed and all("Id le " in p for p in listed)  # every listing was an Id window


def test_orders_and_quotes_come_through_their_deals_when_not_filterable(tmp_path, monkeypatch):
    """§9 names `LastUpdateDate` on Contacts, Deals, Tasks, InteractionRecords only; orders by
    `DealId eq N` (C [S7]), quotes by `Deal/Id eq N` (C [S8]). The decision is stored and, once
    the stored form is refused, probed again and replaced."""
    monkeypatch.setenv("PLOOMES_CX_HOME", str(tmp_path / "state"))
    data = PloomesDataset(persons=400, seed=6)
    start, end = local(2026, 11, 2), local(2026, 11, 6)
    with (
        PloomesSandbox(data, user_key=SECRET_KEY, **FAST) as server,
        _api(server, Forms.stored("acme")) as api,
    ):
        window = read_window(api, ENTITIES["orders"], start, end, CallStats())
        assert (
            window.form == "window"
            and json.loads(forms_file("acme").read_text())["orders_window"]["form"] == "window"
        )
        server.readings["orders_quotes_last_update"] = "400"  # the stored form is refused from now on
        through = read_window(api, ENTITIES["orders"], start, end, CallStats())
        quotes = read_window(api, ENTITIES["quotes"], start, end, CallStats())
        assert any("Deal/Id" in p for p in _asked(server))
    assert through.form == quotes.form == "deals"
    assert json.loads(forms_file("acme").read_text())["orders_window"]["form"] == "deals"
    deals = {
        int(i)
        for i, t in zip(
            data.tables["deals"].cols["Id"], data.tables["deals"].cols["LastUpdateDate"], strict=True
        )
        if start.timestamp() * 1000 <= t < end.timestamp() * 1000
    }
    assert through.records and {r["DealId"] for r in through.records} <= deals
    orders = data.tables["orders"].cols
    assert {r["Id"] for r in through.records} == {
        int(i) for i, d in zip(orders["Id"], orders["DealId"], strict=True) if int(d) in deals
    }


def test_deleted_deals_are_all_found_in_date_slices_when_the_list_takes_no_paging():
    """§9 shows `GetDeletedDeals?$filter=LastUpdateDate ge <ts>` only (C [S2]); §3: the server's
    cap and whether it cuts silently are unknown. 250 deletes behind a cap of 100: every one."""
    data = PloomesDataset(persons=1000, seed=8)
    gone = [int(i) for i in data.tables["deals"].cols["Id"][:250]]
    first = int(local(2026, 11, 10).timestamp() * 1000)
    readings = {"deleted_deals_paging": "400"}
    with PloomesSandbox(data, user_key=SECRET_KEY, max_top=100, readings=readings, **FAST) as server:
        for n, deal in enumerate(gone):
            server.delete("deals", deal, first + n * 7_000)
        with _api(server) as api:
            found = deleted_deals(api, local(2026, 1, 1), CallStats())
    assert sorted(found) == sorted(gone)


def _mapping(directory: Path) -> str:
    """The probes' mapping, paced at the fastest rate a mapping may ask for: at the default rates
    (120 and 60 requests/min) `check`'s probes spent 22 s asleep (issue 29)."""
    path = directory / "acme.yaml"
    path.write_text(
        textwrap.dedent("""\
        name: acme
        ploomes:
          max_attempts: 3
          requests_per_minute: 6000
        customerx:
          requests_per_minute: 6000
        sync:
          start: "2026-11-01"
        contracts:
          source: deal_products
        timeline: [notes, activities, attachments]
        """)
    )
    return str(path)


@pytest.mark.parametrize(
    "readings",
    [
        {},
        {"id_in": "400", "or_filter": "400"},
        *({r: v} for r, v in sorted(EXPECTED)),
        {"unknown_select": "400"},
    ],
    ids=repr,
)
def test_check_prints_the_form_the_sync_will_use_and_writes_nothing_unless_asked(
    tmp_path, monkeypatch, capsys, readings
):
    monkeypatch.setenv("PLOOMES_CX_HOME", str(tmp_path / "state"))
    data = PloomesDataset(persons=60, seed=2)
    with (
        PloomesSandbox(data, user_key=SECRET_KEY, readings=readings, **FAST) as ploomes,
        CustomerXSandbox(token=CX_TOKEN, **FAST) as customerx,
    ):
        point_at(monkeypatch, ploomes, customerx)
        assert main(["check", _mapping(tmp_path)]) == 0
        out = capsys.readouterr().out
        assert not (tmp_path / "state").exists()  # contract §5: check writes nothing
        assert main(["check", _mapping(tmp_path), "--save-probes"]) == 0
    forms = {c: "" for c in probes.CAPABILITIES}
    for line in out.splitlines():
        if line.strip().startswith("ok    probe ") and "sync uses `" in line:
            forms[line.split("probe ")[1].split(":")[0]] = line.split("sync uses `")[1].split("`")[0]
    want = {c: f[0] for c, f in probes.CAPABILITIES.items()}
    want.update({EXPECTED[(r, v)][0]: EXPECTED[(r, v)][1] for r, v in readings.items() if (r, v) in EXPECTED})
    if readings.get("or_filter") == "400":
        want["id_list"] = "eq"
    if readings.get("orders_quotes_last_update") == "400":
        want["quotes_window"] = "deals"
    assert forms == want
    assert "probe CustomerX GET /timelines" in out and "probe CustomerX /clients?email=" in out
    assert Forms.stored("acme").chosen == want  # --save-probes stored what it printed
    print(out)


def test_probe_requests_are_reads_that_match_nothing(tmp_path, monkeypatch):
    """A probe is `$top=1` with a filter no record matches: it reads no data."""
    data = PloomesDataset(persons=60, seed=2)
    with PloomesSandbox(data, user_key=SECRET_KEY, **FAST) as server, _api(server) as api:
        for capability in probes.CAPABILITIES:
            before = len(server.requests)
            probes.probe(api, capability)
            for path in _asked(server, before):
                params = dict(p.split("=", 1) for p in path.split("?", 1)[1].split("&"))
                body = api.get(path.split("?")[0], params, CallStats())
                assert body["value"] == [], path
