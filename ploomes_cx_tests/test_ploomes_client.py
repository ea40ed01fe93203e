"""The Ploomes client against the sandbox server over real HTTP."""

from __future__ import annotations

import itertools
import time
from collections import Counter

import pytest

from ploomes_cx.ploomes.client import (
    CallStats,
    PloomesApi,
    PloomesAuthError,
    PloomesRequestError,
    PloomesUnavailableError,
)
from ploomes_cx.ploomes.entities import ENTITIES
from ploomes_cx.sandbox import PloomesSandbox
from ploomes_cx.sandbox.clock import to_ms
from ploomes_cx_tests.conftest import SECRET_KEY, local

# mostly waiting (pacing, daemons, subprocesses): one worker runs these in turn (conftest.py)
pytestmark = pytest.mark.xdist_group("waits")

DAY2, DAY3, DAY4 = local(2026, 11, 2), local(2026, 11, 3), local(2026, 11, 4)


def api_for(server: PloomesSandbox, **kw) -> PloomesApi:
    options = {
        "requests_per_minute": 60_000,
        "page_size": 25,
        "backoff_initial_seconds": 0.01,
        "max_attempts": 6,
    }
    return PloomesApi(server.url, kw.pop("key", SECRET_KEY), **{**options, **kw})


def extract(api: PloomesApi, entity: str, start=DAY2, end=DAY3) -> tuple[list[int], CallStats]:
    stats = CallStats()
    ids = [r["Id"] for page in api.iter_window(ENTITIES[entity], start, end, stats) for r in page]
    return ids, stats


def test_paging_returns_every_record_once_even_when_change_dates_collide_at_page_edges(ploomes):
    expected = ploomes.dataset.expected_ids("persons", DAY2, DAY3)
    # The sandbox stamps a bulk import on day 2: more persons share one LastUpdateDate than fit
    # in a page of 25, so that stamp necessarily straddles a page edge.
    contacts = ploomes.dataset.tables["contacts"].cols
    in_window = {
        int(i): int(s)
        for i, s in zip(contacts["Id"], contacts["LastUpdateDate"], strict=True)
        if int(i) in set(expected)
    }
    assert max(Counter(in_window.values()).values()) > 25
    with api_for(ploomes) as api:
        ids, stats = extract(api, "persons")
    assert len(expected) > 50
    assert sorted(ids) == sorted(expected)
    assert len(ids) == len(set(ids))
    assert stats.pages == -(-len(expected) // 25)


def test_short_pages_mid_set_do_not_end_paging(ploomes):
    expected = ploomes.dataset.expected_ids("persons", DAY2, DAY3)
    ploomes.faults.inject("short_page", times=3)
    with api_for(ploomes) as api:
        ids, stats = extract(api, "persons")
    assert sorted(ids) == sorted(expected)
    assert stats.pages > -(-len(expected) // 25)


def test_short_pages_without_count_still_reach_the_end(dataset):
    """A server that sends no @odata.count: paging may only stop on an empty page."""
    expected = dataset.expected_ids("deals", DAY2, DAY3)
    server = PloomesSandbox(
        dataset, user_key=SECRET_KEY, requests_per_minute=60_000, burst=100, supports_count=False
    )
    with server, api_for(server) as api:
        server.faults.inject("short_page", times=2)
        ids, stats = extract(api, "deals")
    assert sorted(ids) == sorted(expected)
    assert stats.requests == stats.pages + 1  # the closing empty page


def test_a_record_stamped_exactly_at_end_belongs_to_the_next_window(ploomes):
    record_id = ploomes.dataset.expected_ids("persons", DAY2, DAY3)[0]
    ploomes.dataset.set_date("contacts", record_id, "LastUpdateDate", to_ms(DAY3))
    with api_for(ploomes) as api:
        first, _ = extract(api, "persons", DAY2, DAY3)
        second, _ = extract(api, "persons", DAY3, DAY4)
    assert record_id not in first
    assert record_id in second


def test_utc_literals_select_the_same_window(ploomes):
    with api_for(ploomes) as api:
        offset_ids, _ = extract(api, "deals")
    with api_for(ploomes, datetime_literal="utc") as api:
        utc_ids, _ = extract(api, "deals")
    assert offset_ids == utc_ids and offset_ids


def test_429_storm_is_survived_and_retry_after_is_honoured(ploomes):
    ploomes.faults.inject("429", times=3, retry_after=1)
    with api_for(ploomes) as api:
        ids, stats = extract(api, "deals")
    assert sorted(ids) == sorted(ploomes.dataset.expected_ids("deals", DAY2, DAY3))
    assert stats.rate_limited == 3 and stats.retries == 3
    times = [t for t, _ in ploomes.requests]
    gaps = [b - a for a, b in itertools.pairwise(times[:4])]
    # backoff would wait ~0.01 s; only Retry-After explains a full second between attempts
    assert all(g >= 0.8 for g in gaps), gaps


def test_server_limit_answered_with_429_is_retried_until_done(ploomes):
    ploomes.set_rate_limit(600, burst=1)  # one request per 0.1 s, client not paced
    with api_for(ploomes, requests_per_minute=6000, page_size=10) as api:
        ids, stats = extract(api, "persons")
    assert sorted(ids) == sorted(ploomes.dataset.expected_ids("persons", DAY2, DAY3))
    assert stats.rate_limited > 0


@pytest.mark.parametrize("fault", ["500", "drop", "malformed"])
def test_transient_failures_are_retried(ploomes, fault):
    ploomes.faults.inject(fault, times=2)
    with api_for(ploomes) as api:
        ids, stats = extract(api, "deals")
    assert sorted(ids) == sorted(ploomes.dataset.expected_ids("deals", DAY2, DAY3))
    assert stats.retries == 2
    assert ploomes.faults.served[fault] == 2


def test_timeouts_are_retried(ploomes):
    ploomes.faults.inject("slow", times=1, delay=1.5)
    with api_for(ploomes, timeout_seconds=0.5) as api:
        ids, stats = extract(api, "deals")
    assert ids and stats.reasons == {"timeout": 1}


def test_gives_up_with_a_clear_error_after_max_attempts(ploomes):
    ploomes.faults.inject("500", times=10)
    with api_for(ploomes, max_attempts=3) as api, pytest.raises(PloomesUnavailableError) as err:
        extract(api, "deals")
    assert "after 3 attempts" in str(err.value) and "HTTP 500" in str(err.value)
    assert len(ploomes.requests) == 3


def test_other_4xx_are_not_retried(dataset):
    with (
        PloomesSandbox(
            dataset, user_key=SECRET_KEY, requests_per_minute=60_000, burst=100, top_cap_mode="error"
        ) as server,
        api_for(server, page_size=500) as api,
    ):
        with pytest.raises(PloomesRequestError) as err:
            extract(api, "deals")
        assert len(server.requests) == 1
    assert "400" in str(err.value) and "$top may not exceed 300" in str(err.value)


def test_page_size_over_the_cap_is_truncated_silently_and_still_complete(dataset):
    with (
        PloomesSandbox(
            dataset, user_key=SECRET_KEY, requests_per_minute=60_000, burst=100, max_top=40
        ) as server,
        api_for(server, page_size=100) as api,
    ):
        ids, stats = extract(api, "persons", DAY2, DAY4)
    assert sorted(ids) == sorted(dataset.expected_ids("persons", DAY2, DAY4))
    assert stats.pages >= len(ids) // 40 > 2


def test_wrong_key_names_the_variable_and_never_the_key(ploomes):
    api = api_for(ploomes, key="not-the-key", user_key_env="ACME_PLOOMES_KEY")
    with api, pytest.raises(PloomesAuthError) as err:
        extract(api, "deals")
    assert "$ACME_PLOOMES_KEY" in str(err.value)
    assert "not-the-key" not in str(err.value)
    assert len(ploomes.requests) == 1  # 401 is not retried


def test_requests_are_paced_to_the_configured_rate(ploomes):
    with api_for(ploomes, requests_per_minute=600, page_size=10) as api:
        extract(api, "persons")
    times = [t for t, _ in ploomes.requests]
    assert len(times) > 5
    # request starts are spaced 0.1 s apart; arrivals can jitter, the overall rate cannot exceed it
    assert times[-1] - times[0] >= (len(times) - 1) * 0.1 * 0.9


def test_pacing_file_shares_one_budget_between_clients(ploomes, tmp_path):
    state = tmp_path / "pace"
    start = time.monotonic()
    with (
        api_for(ploomes, requests_per_minute=300, pacing_file=state) as a,
        api_for(ploomes, requests_per_minute=300, pacing_file=state) as b,
    ):
        for _ in range(3):
            a.get("/Account", {})
            b.get("/Account", {})
    # six requests at 0.2 s spacing take at least 1.0 s, even though each client made only three
    assert time.monotonic() - start >= 0.95


def test_fields_catalogue_is_read_whole(ploomes):
    stats = CallStats()
    with api_for(ploomes, page_size=4) as api:
        fields = api.fields(stats)
    keys = {f["Key"] for f in fields}
    assert "contact_0A1B2C3D-0000-0000-0000-00000000000A" in keys
    assert len(fields) == len(keys) > 8
    assert stats.pages >= 3
