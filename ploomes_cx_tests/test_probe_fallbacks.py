"""How a probed query form may change (issue 28, point 6, review of build 4), over real HTTP.

A form moves only forward, towards the one ploomes-api.md confirms, so a retry loop always ends;
only a 400 (§4: a bad OData query or field) is a refusal, and for the unscoped `/Attachments`
listing a timeout that outlasts the retries (§2): any other outage fails the run and stores
nothing; a stored fallback is probed again once it is old. GetDeletedDeals slices ask `$top=300`
(§3) and never trust a page the server may have cut.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from urllib.parse import unquote_plus

import pytest

from ploomes_cx.cli import main
from ploomes_cx.ploomes import probes
from ploomes_cx.ploomes.client import CallStats, PloomesApi, PloomesRequestError, PloomesUnavailableError
from ploomes_cx.ploomes.deleted_deals import _keyed, deleted_deals
from ploomes_cx.ploomes.entities import ENTITIES
from ploomes_cx.ploomes.forms import FALLBACK_DAYS, Forms, forms_file
from ploomes_cx.ploomes.windows import read_window
from ploomes_cx.sandbox import CustomerXSandbox, PloomesDataset, PloomesSandbox
from ploomes_cx_tests.conftest import CX_TOKEN, SECRET_KEY, local, point_at

FAST = {"requests_per_minute": 60_000, "burst": 1000}
PREFERRED = {c: forms[0] for c, forms in probes.CAPABILITIES.items()}


def _api(server: PloomesSandbox, forms: Forms | None = None, attempts: int = 2) -> PloomesApi:
    return PloomesApi(
        server.url,
        SECRET_KEY,
        requests_per_minute=60_000,
        max_attempts=attempts,
        backoff_initial_seconds=0.01,
        backoff_max_seconds=0.05,
        forms=forms,
    )


def _asked(server: PloomesSandbox, since: int = 0) -> list[str]:
    return [unquote_plus(path) for _, path in server.requests[since:]]


@pytest.mark.timeout(60)
def test_orders_by_deal_end_in_eq_when_in_and_or_are_refused_in_use_though_the_probe_takes_in():
    """A front server refusing long URLs with a 400: `Id in (0)` passes the probe, the 40-deal `in`
    and `or` batches do not. The form goes in, or, eq, and the orders all arrive (no loop)."""
    data = PloomesDataset(persons=300, seed=5)
    orders = data.tables["orders"].cols
    deals = sorted({int(d) for d in orders["DealId"]})[:40]
    want = {int(i) for i, d in zip(orders["Id"], orders["DealId"], strict=True) if int(d) in deals}
    with PloomesSandbox(data, user_key=SECRET_KEY, max_url_length=200, **FAST) as server, _api(server) as api:
        got = [
            r["Id"] for page in api.iter_by_ids("/Orders", deals, (), CallStats(), key="DealId") for r in page
        ]
        asked = _asked(server)
    assert sorted(got) == sorted(want) and api.forms.get("id_list") == "eq"
    assert sum("DealId in (" in p for p in asked) == 1 and sum(" or DealId" in p for p in asked) == 1


def test_a_reprobe_never_returns_the_refused_form_or_an_earlier_one_and_the_last_refused_is_an_error():
    data = PloomesDataset(persons=60, seed=2)
    with PloomesSandbox(data, user_key=SECRET_KEY, **FAST) as server, _api(server) as api:
        assert probes.probe(api, "id_list").form == "in"  # the probe takes `in` ...
        forms = Forms()
        assert probes.reprobe(api, forms, "id_list", "in") == "or"
        assert probes.reprobe(api, forms, "id_list", "or") == "eq"  # ... yet `or` refused moves on
        assert forms.get("id_list") == "eq"
        with pytest.raises(PloomesRequestError, match="last form of id_list"):
            probes.reprobe(api, forms, "id_list", "eq", "HTTP 400")
        for capability, order in probes.CAPABILITIES.items():
            assert probes.reprobe(api, Forms(), capability, order[0]) == order[1]


@pytest.mark.parametrize("capability", sorted(probes.CAPABILITIES))
def test_one_transient_error_during_a_probe_is_retried_not_read_as_a_refusal(capability):
    data = PloomesDataset(persons=60, seed=2)
    with PloomesSandbox(data, user_key=SECRET_KEY, **FAST) as server, _api(server) as api:
        server.faults.inject("500", times=1)
        assert probes.decide(api, api.forms, capability) == PREFERRED[capability]
        assert server.faults.served == {"500": 1}


@pytest.mark.parametrize("capability", sorted(probes.CAPABILITIES))
def test_an_outage_during_a_probe_fails_the_run_and_stores_nothing(tmp_path, monkeypatch, capability):
    monkeypatch.setenv("PLOOMES_CX_HOME", str(tmp_path / "state"))
    data = PloomesDataset(persons=60, seed=2)
    with (
        PloomesSandbox(data, user_key=SECRET_KEY, **FAST) as server,
        _api(server, Forms.stored("acme")) as api,
    ):
        server.faults.inject("500", times=50)
        with pytest.raises(PloomesUnavailableError):
            probes.decide(api, api.forms, capability)
    assert not forms_file("acme").exists() and Forms.stored("acme").get(capability) is None


def test_an_outage_of_a_windowed_read_is_not_a_refusal_of_its_form(tmp_path, monkeypatch):
    """A 5xx that outlasts the retries on `/Orders` windowed is an outage, not `window` refused."""
    monkeypatch.setenv("PLOOMES_CX_HOME", str(tmp_path / "state"))
    data = PloomesDataset(persons=200, seed=6)
    with (
        PloomesSandbox(data, user_key=SECRET_KEY, **FAST) as server,
        _api(server, Forms.stored("acme")) as api,
    ):
        assert probes.decide(api, api.forms, "orders_window") == "window"
        server.faults.inject("500", times=2)  # both attempts of the first window page
        with pytest.raises(PloomesUnavailableError):
            read_window(api, ENTITIES["orders"], local(2026, 11, 2), local(2026, 11, 6), CallStats())
    assert Forms.stored("acme").get("orders_window") == "window"


def test_a_timed_out_attachments_probe_is_retried_before_it_counts_as_refused():
    """§2: unscoped `/Attachments` listings time out; a timeout is a refusal there only, and only
    once the client's normal retries are spent."""
    data = PloomesDataset(persons=60, seed=2)
    readings = {"attachments_unscoped": "timeout"}
    with PloomesSandbox(data, user_key=SECRET_KEY, readings=readings, **FAST) as server:
        with _api(server, attempts=3) as api:
            assert probes.probe(api, "attachments_window").form == "id_windows"
        assert sum(p.startswith("/Attachments?") for p in _asked(server)) == 3


@pytest.mark.parametrize(("form", "age_days", "used"), [("deals", 1, "deals"), ("deals", 40, "window")])
def test_a_stored_fallback_is_probed_again_once_it_is_old(tmp_path, monkeypatch, form, age_days, used):
    monkeypatch.setenv("PLOOMES_CX_HOME", str(tmp_path / "state"))
    assert FALLBACK_DAYS < 40
    when = (dt.datetime.now(dt.UTC) - dt.timedelta(days=age_days)).isoformat(timespec="seconds")
    path: Path = forms_file("acme")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"orders_window": {"form": form, "detail": "x", "probed_at": when}}))
    data = PloomesDataset(persons=60, seed=2)
    with (
        PloomesSandbox(data, user_key=SECRET_KEY, **FAST) as server,
        _api(server, Forms.stored("acme")) as api,
    ):
        assert probes.decide(api, api.forms, "orders_window") == used
    assert Forms.stored("acme").get("orders_window") == used


def _deleted(server: PloomesSandbox, data: PloomesDataset, n: int) -> list[int]:
    gone = [int(i) for i in data.tables["deals"].cols["Id"][:n]]
    first = int(local(2026, 11, 10).timestamp() * 1000)
    for k, deal in enumerate(gone):
        server.delete("deals", deal, first + k * 7_000)
    return gone


def test_deleted_deal_slices_ask_top_300_and_trust_no_default_page_size():
    """§3: `$top=300` is the documented page size; a list asked without it gets a default
    (here 50) nobody documents. 120 deletes: every one, in one slice."""
    data = PloomesDataset(persons=600, seed=8)
    readings = {"deleted_deals_paging": "400"}
    with PloomesSandbox(data, user_key=SECRET_KEY, default_top=50, readings=readings, **FAST) as server:
        gone = _deleted(server, data, 120)
        before = len(server.requests)
        with _api(server) as api:
            found = deleted_deals(api, local(2026, 1, 1), CallStats())
        slices = [p for p in _asked(server, before) if "LastUpdateDate le" in p]
    assert sorted(found) == sorted(gone)
    assert slices and all("$top=300" in p for p in slices)


def test_deleted_deals_rows_without_an_integer_id_are_an_error_not_dropped():
    """The row shape of GetDeletedDeals is I (§9): a delete we cannot name stops the reconcile."""
    with pytest.raises(PloomesRequestError, match="without an integer Id"):
        _keyed([{"Id": 7}, {"Id": "8"}, {"Title": "no id"}])
    assert _keyed([{"Id": 7}]) == {7: {"Id": 7}}


@pytest.mark.parametrize(
    ("pin", "stored", "used"), [("eq", None, "eq"), ("probe", "or", "or"), ("or", "eq", "or")]
)
def test_check_names_the_pinned_or_stored_form_the_sync_uses_and_what_the_probe_found(
    tmp_path, monkeypatch, capsys, pin, stored, used
):
    monkeypatch.setenv("PLOOMES_CX_HOME", str(tmp_path / "state"))
    if stored:
        Forms.stored("acme").set("id_list", stored, "stored by an earlier sync")
    mapping = tmp_path / "acme.yaml"
    # fast limits: what `check` says does not depend on its pace (the defaults cost 10 s of waits)
    mapping.write_text(
        f"name: acme\nploomes:\n  id_list_filter: {pin}\n  requests_per_minute: 6000\n"
        'customerx:\n  requests_per_minute: 6000\nsync:\n  start: "2026-11-01"\n'
    )
    with (
        PloomesSandbox(PloomesDataset(persons=60, seed=2), user_key=SECRET_KEY, **FAST) as ploomes,
        CustomerXSandbox(token=CX_TOKEN, **FAST) as customerx,
    ):
        point_at(monkeypatch, ploomes, customerx)
        main(["check", str(mapping)])
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "probe id_list:" in x)
    assert f"sync uses `{used}`" in line and "the probe found `in`" in line, line
    assert (
        "probe CustomerX /contacts?external_id_contact=" in out and "probe CustomerX /contacts?email=" in out
    )
