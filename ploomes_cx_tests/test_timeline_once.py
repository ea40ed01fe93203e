"""A timeline entry is posted once under every reading of `GET /timelines` (issue 28, point 3).

customerx-api.md §8.4 knows the listing from one weak source: its filters and shape are not
documented, and §3 says response timestamps may come back in UTC with a `Z`. An entry in doubt
(a killed run left it pending, or an answer was lost) must be found whatever the listing shows,
and when the listing cannot answer, it is posted and flagged rather than lost.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import httpx
import pytest

from ploomes_cx.customerx.client import CustomerXApi
from ploomes_cx.customerx.endpoints import DEFAULT_ENDPOINTS, Endpoint
from ploomes_cx.load import ledger
from ploomes_cx.load.loop import EntityLoad, Planned
from ploomes_cx.mapping import load_mapping
from ploomes_cx.sandbox import CustomerXSandbox
from ploomes_cx.sandbox.readings import READINGS
from ploomes_cx_tests.conftest import CX_TOKEN, write_mapping

LISTINGS = [
    dict(zip(("timeline_client", "timestamps", "timeline_filter"), combo, strict=True))
    for combo in itertools.product(
        READINGS["timeline_client"].values, READINGS["timestamps"].values, READINGS["timeline_filter"].values
    )
]


def _entry(client: str, title: str = "Reunião", when: str = "2026-11-03T10:00:00-03:00") -> dict:
    return {
        "external_id_client": client,
        "title": title,
        "body": "Falamos do contrato",
        "created_at": when,
        "operation": "client_note",
    }


@contextmanager
def _account(tmp_path: Path, readings: dict[str, str]) -> Iterator[CustomerXSandbox]:
    """Two clients, each with a note of the same title and time, which our crosswalk knows as sent."""
    with CustomerXSandbox(token=CX_TOKEN, requests_per_minute=60_000, burst=1000, readings=readings) as cx:
        headers = {"Authorization": cx.token}
        for client in ("A1", "B1"):
            made = httpx.post(
                cx.url + "/clients",
                json={"external_id_client": client, "company_name": client},
                headers=headers,
            )
            assert made.is_success
        yield cx


@contextmanager
def _load(tmp_path: Path, cx: CustomerXSandbox, **endpoints: Endpoint) -> Iterator[EntityLoad]:
    m = load_mapping(write_mapping(tmp_path, "notes"))
    with (
        duckdb.connect(str(tmp_path / "state.duckdb")) as con,
        CustomerXApi(
            cx.url,
            cx.token,
            requests_per_minute=60_000,
            backoff_initial_seconds=0.01,
            endpoints={**DEFAULT_ENDPOINTS, **endpoints},
        ) as api,
    ):
        ledger.ensure(con, "notes")
        clients = ledger.Crosswalk(con, "notes", "clients", "run-0")
        for cx_id, record in cx.store.records["clients"].items():
            clients.remember(record["external_id_client"], cx_id, "h", {}, "sent")
        clients.flush()
        yield EntityLoad(m, "timeline", api, con, "run-1")


PENDING = ledger.Known(None, None, None, "pending")


@pytest.mark.parametrize("readings", LISTINGS, ids=lambda r: "-".join(r.values()))
def test_an_entry_a_killed_run_posted_is_found_not_posted_twice(tmp_path, readings):
    with _account(tmp_path, readings) as cx:
        headers = {"Authorization": cx.token}
        for client in ("A1", "B1"):  # the same title and time on another client is not ours
            assert httpx.post(cx.url + "/timelines", json=_entry(client), headers=headers).is_success
        with _load(tmp_path, cx) as load:
            outcome = load.post_once(Planned({}, "note-1", _entry("B1"), "d"), PENDING)
            load.crosswalk.flush()
            held = ledger.read(load.con, "notes", "timeline")["note-1"].customerx_id
        b1 = next(i for i, t in cx.store.records["timelines"].items() if t["external_id_client"] == "B1")
        assert outcome == ("adopted", None)
        assert held == b1 and len(cx.store.records["timelines"]) == 2


@pytest.mark.parametrize("readings", LISTINGS, ids=lambda r: "-".join(r.values()))
def test_an_entry_whose_answer_was_lost_is_looked_for_before_it_is_posted_again(tmp_path, readings):
    with _account(tmp_path, readings) as cx, _load(tmp_path, cx) as load:
        cx.faults.inject("malformed")  # the entry is made, its answer broken
        assert load.post_once(Planned({}, "note-1", _entry("A1"), "d"), None) == ("adopted", None)
        titles = [t["title"] for t in cx.store.records["timelines"].values()]
        assert titles == ["Reunião"]


def test_an_entry_not_there_is_posted_once(tmp_path):
    with (
        _account(tmp_path, {"timeline_client": "id_only", "timestamps": "utc_z"}) as cx,
        _load(tmp_path, cx) as load,
    ):
        other = _entry("A1", when="2026-11-03T11:00:00-03:00")  # an hour later: another entry
        assert httpx.post(cx.url + "/timelines", json=other, headers={"Authorization": cx.token}).is_success
        assert load.post_once(Planned({}, "note-1", _entry("A1"), "d"), PENDING) == ("created", None)
        assert len(cx.store.records["timelines"]) == 2


def test_an_ignored_filter_costs_one_reading_of_the_timeline_per_load_not_one_per_entry(tmp_path):
    with _account(tmp_path, {"timeline_filter": "ignored"}) as cx, _load(tmp_path, cx) as load:
        for n in range(3):
            entry = _entry("A1" if n % 2 else "B1", title=f"Nota {n}")
            assert httpx.post(
                cx.url + "/timelines", json=entry, headers={"Authorization": cx.token}
            ).is_success
        before = len(cx.requests)
        for n in range(3):
            entry = _entry("A1" if n % 2 else "B1", title=f"Nota {n}")
            assert load.post_once(Planned({}, f"note-{n}", entry, "d"), PENDING)[0] == "adopted"
        listings = [p for _, method, p in cx.requests[before:] if method == "GET" and "page=1&" in p + "&"]
        assert len(listings) == 1


def test_a_listing_that_cannot_answer_posts_the_entry_and_flags_a_possible_duplicate(tmp_path):
    """Without a listing the entry in doubt may or may not be there: a duplicate someone can find
    in the ledger is better than a lost note."""
    gone = Endpoint("GET", "/timeline_entries")  # a listing this server does not have (404)
    with _account(tmp_path, {}) as cx, _load(tmp_path, cx, list_timelines=gone) as load:
        outcome, detail = load.post_once(Planned({}, "note-1", _entry("A1"), "d"), PENDING)
        assert outcome == "created" and "duplicate" in (detail or "") and "HTTP 404" in (detail or "")
        assert len(cx.store.records["timelines"]) == 1


@pytest.mark.parametrize("timestamps", READINGS["timestamps"].values)
def test_an_entry_sent_with_a_naive_time_in_microseconds_is_found_when_given_back_cut_to_the_second(
    tmp_path, timestamps
):
    """The load sends Ploomes' offset-less local time with its fraction (ploomes-api.md §5);
    CustomerX may give it back in UTC, cut to the second (customerx-api.md §3)."""
    when = "2026-11-03T10:00:00.753000"
    with _account(tmp_path, {"timestamps": timestamps}) as cx, _load(tmp_path, cx) as load:
        headers = {"Authorization": cx.token}
        assert httpx.post(cx.url + "/timelines", json=_entry("A1", when=when), headers=headers).is_success
        assert load.post_once(Planned({}, "note-1", _entry("A1", when=when), "d"), PENDING)[0] == "adopted"
        assert len(cx.store.records["timelines"]) == 1


@pytest.mark.parametrize("readings", [{"timeline_filter": "ignored"}, {"timeline_filter": "honoured"}])
def test_a_lost_answer_after_the_listing_was_read_is_looked_for_in_a_fresh_reading(tmp_path, readings):
    """The listing read for an earlier entry is older than the POST whose answer was lost: the
    entry is looked for in a new reading, not in the old one (where it cannot be)."""
    with _account(tmp_path, readings) as cx, _load(tmp_path, cx) as load:
        headers = {"Authorization": cx.token}
        assert httpx.post(cx.url + "/timelines", json=_entry("A1", "Outra"), headers=headers).is_success
        assert load.post_once(Planned({}, "note-1", _entry("A1", "Outra"), "d"), PENDING)[0] == "adopted"
        cx.faults.inject("malformed")  # the next POST lands, its answer is broken
        assert load.post_once(Planned({}, "note-2", _entry("A1"), "d"), None) == ("adopted", None)
        titles = sorted(t["title"] for t in cx.store.records["timelines"].values())
    assert titles == ["Outra", "Reunião"]


def test_two_notes_with_the_same_text_and_time_never_share_one_entry(tmp_path):
    """Notes made in bulk repeat title, body and minute: each CustomerX entry is adopted by one
    record at most, so the second note is posted, not lost."""
    with _account(tmp_path, {}) as cx, _load(tmp_path, cx) as load:
        assert httpx.post(
            cx.url + "/timelines", json=_entry("A1"), headers={"Authorization": cx.token}
        ).is_success
        first = load.post_once(Planned({}, "note-1", _entry("A1"), "d"), PENDING)
        second = load.post_once(Planned({}, "note-2", _entry("A1"), "d"), PENDING)
        load.crosswalk.flush()
        held = {k: v.customerx_id for k, v in ledger.read(load.con, "notes", "timeline").items()}
    assert (first[0], second[0]) == ("adopted", "created")
    assert len(cx.store.records["timelines"]) == 2 and len(set(held.values())) == 2


def test_an_entry_without_a_date_cannot_be_told_apart_so_it_is_posted_and_flagged(tmp_path):
    with _account(tmp_path, {}) as cx, _load(tmp_path, cx) as load:
        undated = {**_entry("A1"), "created_at": None}
        assert httpx.post(cx.url + "/timelines", json=undated, headers={"Authorization": cx.token}).is_success
        outcome, detail = load.post_once(Planned({}, "note-1", undated, "d"), PENDING)
    assert outcome == "created" and "no date" in (detail or "")


@pytest.mark.parametrize(
    ("sent", "held", "same"),
    [
        ("2026-11-03T10:00:00", "2026-11-03T13:00:00", False),  # both offset-less: as written, 3 h apart
        ("2026-11-03T10:00:00.900", "2026-11-03T10:00:00", True),
        ("2026-11-03T10:00:00", "2026-11-03T13:00:00Z", True),  # local time, given back in UTC
        ("2026-11-03T10:00:00", "2026-11-03T10:00:00Z", True),  # or taken as UTC by CustomerX
        ("2026-11-03T10:00:00-03:00", "2026-11-03T10:00:00Z", False),
    ],
)
def test_times_are_compared_as_the_same_instant_under_every_reading_and_no_further(sent, held, same):
    from zoneinfo import ZoneInfo

    from ploomes_cx.load.timeline import _same_time

    assert _same_time(sent, held, ZoneInfo("America/Sao_Paulo")) is same
