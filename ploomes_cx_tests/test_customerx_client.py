"""The CustomerX client against the CustomerX sandbox server over real HTTP."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from ploomes_cx.customerx.client import (
    CallStats,
    CustomerXApi,
    CustomerXAuthError,
    CustomerXRejected,
    CustomerXUnavailableError,
    wait_hint,
)
from ploomes_cx.customerx.endpoints import endpoints_with
from ploomes_cx.sandbox.customerx_server import CustomerXSandbox

# mostly waiting (pacing, daemons, subprocesses): one worker runs these in turn (conftest.py)
pytestmark = pytest.mark.xdist_group("waits")

TOKEN = "cx-SECRET-token-0042"


@pytest.fixture
def cx(tmp_path) -> Iterator[CustomerXSandbox]:
    with CustomerXSandbox(
        token=TOKEN, requests_per_minute=60_000, burst=1000, state_file=tmp_path / "cx.json"
    ) as server:
        yield server


def api_for(server: CustomerXSandbox, **kw) -> CustomerXApi:
    options = {"requests_per_minute": 60_000, "backoff_initial_seconds": 0.01, "max_attempts": 5}
    return CustomerXApi(server.url, kw.pop("token", TOKEN), **{**options, **kw})


def client_body(ext: str, **extra) -> dict:
    return {
        "external_id_client": ext,
        "company_name": f"Empresa {ext}",
        "cnpj_cpf": "11222333000181",
        **extra,
    }


def test_create_update_and_list_clients(cx):
    with api_for(cx) as api:
        created, _ = api.call("create_client", body=client_body("A1", email="a@x.com"))
        assert isinstance(created["id"], int) and created["external_id_client"] == "A1"
        api.call("update_client", external_id="A1", body={"trading_name": "Fantasia"})
        (row,) = [r for r in api.list_all("list_clients") if r["external_id_client"] == "A1"]
    assert row["trading_name"] == "Fantasia" and row["email"] == "a@x.com"  # PUT is partial


def test_bearer_scheme_and_path_style_updates_are_accepted(cx):
    path_style = endpoints_with({"update_client": {"external_id": "path"}})
    with api_for(cx, auth_scheme="bearer", endpoints=path_style) as api:
        api.call("create_client", body=client_body("B1"))
        updated, _ = api.call("update_client", external_id="B1", body={"company_name": "Novo Nome"})
    assert updated["company_name"] == "Novo Nome"
    assert cx.writes[-1]["path"].endswith("/clients/B1")


def test_paging_follows_the_pagination_headers(cx):
    with api_for(cx) as api:
        for n in range(45):
            api.call("create_client", body=client_body(f"P{n}"))
        stats = CallStats()
        ids = [r["external_id_client"] for r in api.list_all("list_clients", stats=stats)]
    assert sorted(ids) == sorted(f"P{n}" for n in range(45))
    assert stats.requests == 3  # 20 + 20 + 5


def test_validation_refusals_are_422_with_field_errors_and_not_retried(cx):
    with api_for(cx) as api:
        api.call("create_client", body=client_body("C1"))
        api.call("create_contact", body={"name": "Ana", "email": "ana@x.com", "external_id_client": "C1"})
        cases = [
            ("create_contact", {"name": "Sem Email", "external_id_client": "C1"}, "email"),
            ("create_contact", {"name": "Outra", "email": "ANA@x.com", "external_id_client": "C1"}, "email"),
            (
                "create_contact",
                {"name": "Órfã", "email": "o@x.com", "external_id_client": "NOPE"},
                "external_id_client",
            ),
            ("create_client", client_body("C1"), "external_id_client"),
        ]
        for operation, body, field in cases:
            before = len(cx.requests)
            with pytest.raises(CustomerXRejected) as err:
                api.call(operation, body=body)
            assert err.value.status == 422 and field in json.loads(err.value.body)["errors"]
            assert len(cx.requests) == before + 1
    assert len(cx.store.records["contacts"]) == 1


def test_custom_attribute_shapes_are_all_accepted(cx):
    with api_for(cx) as api:
        created, _ = api.call(
            "create_client",
            body=client_body(
                "D1",
                custom_attributes=[{"external_id": "segmento", "description": "Segmento", "value": "Varejo"}],
            ),
        )
        api.call(
            "update_client", external_id="D1", body={"custom_attributes": [{"label": "segmento", "value": 7}]}
        )
        (row,) = list(api.list_all("list_clients", params={"external_id_client": "D1"}))
    assert created["custom_attributes"][0]["value"] == "Varejo"
    assert row["custom_attributes"] == [{"name": "segmento", "label": "segmento", "value": "7"}]


def test_wrong_token_names_the_variable_never_the_token(cx):
    with (
        api_for(cx, token="not-it", token_env="ACME_CX_TOKEN") as api,
        pytest.raises(CustomerXAuthError) as err,
    ):
        api.call("list_clients")
    assert "$ACME_CX_TOKEN" in str(err.value) and "not-it" not in str(err.value)
    assert len(cx.requests) == 1


@pytest.mark.parametrize("fault", ["500", "drop", "malformed"])
def test_transient_failures_are_retried(cx, fault):
    with api_for(cx) as api:
        api.call("create_client", body=client_body("T1"))
        cx.faults.inject(fault, times=2)
        stats = CallStats()
        rows = list(api.list_all("list_clients", stats=stats))
    assert [r["external_id_client"] for r in rows] == ["T1"] and stats.retries == 2


def test_429_with_retry_after_is_honoured(cx):
    cx.faults.inject("429", times=2, retry_after=1)
    with api_for(cx) as api:
        stats = CallStats()
        list(api.list_all("list_clients", stats=stats))
    times = [t for t, _, _ in cx.requests]
    assert stats.rate_limited == 2
    assert all(b - a >= 0.8 for a, b in itertools.pairwise(times))


def test_the_server_rate_limit_is_enforced_and_survived():
    with (
        CustomerXSandbox(token=TOKEN, requests_per_minute=600, burst=1) as server,
        api_for(server, requests_per_minute=6000) as api,
    ):
        stats = CallStats()
        for n in range(6):
            api.call("create_client", body=client_body(f"R{n}"), stats=stats)
    assert stats.rate_limited > 0 and len(server.store.records["clients"]) == 6


def test_gives_up_after_max_attempts(cx):
    cx.faults.inject("500", times=10)
    with (
        api_for(cx, max_attempts=3) as api,
        pytest.raises(CustomerXUnavailableError, match="after 3 attempts"),
    ):
        api.call("list_clients")


def test_requests_are_paced(cx):
    with api_for(cx, requests_per_minute=600) as api:
        for _ in range(5):
            api.call("list_clients")
    times = [t for t, _, _ in cx.requests]
    assert times[-1] - times[0] >= (len(times) - 1) * 0.1 * 0.9


def test_rate_limit_reset_is_read_as_epoch_or_delay():
    now = 2_000_000_000.0
    assert wait_hint(httpx.Headers({"X-RateLimit-Reset": str(now + 7)}), now=now) == 7
    assert wait_hint(httpx.Headers({"X-RateLimit-Reset": "3"}), now=now) == 3
    assert wait_hint(httpx.Headers({"Retry-After": "2", "X-RateLimit-Reset": "30"}), now=now) == 2
    assert wait_hint(httpx.Headers({}), now=now) is None


def test_state_survives_a_restart_and_writes_are_logged(tmp_path):
    state = tmp_path / "cx.json"
    with (
        CustomerXSandbox(token=TOKEN, requests_per_minute=60_000, burst=100, state_file=state) as first,
        api_for(first) as api,
    ):
        api.call("create_client", body=client_body("S1"))
        api.call(
            "create_timeline",
            body={
                "external_id_client": "S1",
                "title": "Nota",
                "body": "oi",
                "created_at": "2026-11-02T10:00:00-03:00",
                "operation": "client_note",
            },
        )
        assert [w["status"] for w in first.writes] == [201, 201]
    time.sleep(0.05)
    with CustomerXSandbox(token=TOKEN, requests_per_minute=60_000, burst=100, state_file=state) as second:
        assert [c["external_id_client"] for c in second.store.records["clients"].values()] == ["S1"]
        assert len(second.store.records["timelines"]) == 1
        stats = httpx.get(second.url.removesuffix("/api/v1") + "/_sandbox/stats").json()
        assert stats["writes"] == 0
