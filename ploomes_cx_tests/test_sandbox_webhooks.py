"""The sandbox Ploomes API's `/Webhooks` against ploomes-api.md §10: registry, catalogues, callbacks."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from ploomes_cx.sandbox import PloomesSandbox
from ploomes_cx.sandbox.http import POLL_SECONDS
from ploomes_cx_tests.conftest import SECRET_KEY

OFFSETLESS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}")


class Receiver:
    """A bare HTTP endpoint that records what it is sent and answers `status`."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.calls.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": POLL_SECONDS}, daemon=True
        ).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ploomes/webhook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def _api(ploomes: PloomesSandbox) -> httpx.Client:
    return httpx.Client(base_url=ploomes.url, headers={"User-Key": SECRET_KEY})


def _ids(api: httpx.Client, path: str) -> dict[str, int]:
    return {row["Name"]: row["Id"] for row in api.get(path).json()["value"]}


def _register(api: httpx.Client, entity: str, action: str, url: str, key: str = "vk-1") -> dict[str, Any]:
    body = {
        "EntityId": _ids(api, "/Fields@Entities")[entity],
        "ActionId": _ids(api, "/Webhooks@Actions")[action],
        "CallbackUrl": url,
        "ValidationKey": key,
    }
    answer = api.post("/Webhooks", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()["value"][0]


def test_the_registry_registers_lists_patches_and_deletes_behind_the_user_key(ploomes, receiver):
    assert httpx.post(f"{ploomes.url}/Webhooks", json={}).status_code == 401
    with _api(ploomes) as api:
        assert set(_ids(api, "/Webhooks@Actions")) == {"Create", "Update", "Delete", "Win", "Lose", "Reopen"}
        hook = _register(api, "Deal", "Win", receiver.url)
        listed = api.get("/Webhooks").json()["value"]
        assert [h["Id"] for h in listed] == [hook["Id"]]
        assert "ValidationKey" not in listed[0] and listed[0]["CallbackUrl"] == receiver.url
        patched = api.patch(f"/Webhooks({hook['Id']})", json={"CallbackUrl": receiver.url + "?v=2"})
        assert patched.json()["value"][0]["CallbackUrl"].endswith("?v=2")
        assert api.delete(f"/Webhooks({hook['Id']})").status_code == 204
        assert api.get(f"/Webhooks({hook['Id']})").status_code == 404
        assert api.delete(f"/Webhooks({hook['Id']})").status_code == 404


@pytest.mark.parametrize(
    "body, says",
    [
        ({"EntityId": 2, "ActionId": 999, "CallbackUrl": "http://x/y"}, "ActionId"),
        ({"EntityId": 999, "ActionId": 2, "CallbackUrl": "http://x/y"}, "EntityId"),
        ({"EntityId": 2, "ActionId": 2, "CallbackUrl": "not a url"}, "CallbackUrl"),
        ({"EntityId": 2, "ActionId": 2}, "CallbackUrl required"),
    ],
)
def test_a_registration_the_api_cannot_honour_is_refused_with_400(ploomes, body, says):
    with _api(ploomes) as api:
        answer = api.post("/Webhooks", json=body)
        assert answer.status_code == 400 and says in answer.json()["error"]["message"]
        assert api.get("/Webhooks").json()["value"] == []


def test_winning_a_deal_calls_the_win_webhook_with_the_captured_payload_shape(ploomes, receiver, dataset):
    deal = next(
        int(i)
        for i, s in zip(
            dataset.tables["deals"].cols["Id"], dataset.tables["deals"].cols["StatusId"], strict=True
        )
        if s == 1
    )
    with _api(ploomes) as api:
        win = _register(api, "Deal", "Win", receiver.url, key="vk-win")
        _register(api, "Deal", "Update", receiver.url)  # a win is not also an update
        api.post("/_sandbox/touch", json={"entity": "deals", "id": deal, "changes": {"StatusId": 2}})
        deliveries = api.get("/_sandbox/webhooks/deliveries").json()
    assert [(d["action"], d["status"]) for d in deliveries] == [("Win", 200)]
    ((headers, body),) = receiver.calls
    assert headers["X-Ploomes-Validation-Key"] == "vk-win" and "ValidationKey" not in body
    assert set(body) == {
        "AccountId",
        "Action",
        "ActionUserId",
        "Entity",
        "New",
        "Old",
        "WebhookId",
        "WebhookCreatorId",
    }
    assert (body["Action"], body["Entity"], body["WebhookId"]) == ("Win", "Deals", win["Id"])
    assert (body["Old"]["StatusId"], body["New"]["StatusId"], body["New"]["Id"]) == (1, 2, deal)
    assert OFFSETLESS.fullmatch(body["New"]["LastUpdateDate"])  # no offset, as captured (§5)
    assert isinstance(body["New"]["OtherProperties"], dict)  # a {FieldKey: value} map (§7)


@pytest.mark.parametrize("echo", ["body", "both"])
def test_the_key_comes_back_where_the_sandbox_is_told_to_send_it(dataset, receiver, echo):
    with PloomesSandbox(dataset, user_key=SECRET_KEY, webhook_key_echo=echo) as ploomes, _api(ploomes) as api:
        _register(api, "Contact", "Update", receiver.url, key="vk-echo")
        api.post("/_sandbox/touch", json={"entity": "contacts", "id": 1000, "changes": {"Name": "Novo"}})
        api.get("/_sandbox/webhooks/deliveries")
    ((headers, body),) = receiver.calls
    assert body["ValidationKey"] == "vk-echo" and body["New"]["Name"] == "Novo"
    assert (headers.get("X-Ploomes-Validation-Key") == "vk-echo") is (echo == "both")


def test_deletes_drops_duplicates_and_refusals_are_acted_out(ploomes, receiver):
    with _api(ploomes) as api:
        _register(api, "Contact", "Delete", receiver.url)
        _register(api, "Contact", "Update", receiver.url)
        api.post("/_sandbox/delete", json={"entity": "contacts", "id": 1001})
        api.post("/_sandbox/webhooks/switch", json={"kind": "drop"})
        api.post("/_sandbox/touch", json={"entity": "contacts", "id": 1002})
        api.post("/_sandbox/webhooks/switch", json={"kind": "duplicate"})
        api.post("/_sandbox/touch", json={"entity": "contacts", "id": 1003})
        receiver.status = 401
        api.post("/_sandbox/touch", json={"entity": "contacts", "id": 1004})
        deliveries = api.get("/_sandbox/webhooks/deliveries").json()
    assert [(d["action"], d["record_id"], d["dropped"]) for d in deliveries] == [
        ("Delete", 1001, False),
        ("Update", 1002, True),
        ("Update", 1003, False),
        ("Update", 1004, False),
    ]
    assert deliveries[-1]["attempts"] == 1  # a 4xx is final, only 5xx and silence are retried
    sent = [(b["Action"], (b["New"] or b["Old"])["Id"], b["New"] is None) for _, b in receiver.calls]
    assert sent == [
        ("Delete", 1001, True),
        ("Update", 1003, False),
        ("Update", 1003, False),
        ("Update", 1004, False),
    ]


def test_a_receiver_that_fails_is_called_again_with_backoff(ploomes, receiver):
    ploomes.webhooks.backoff = 0.01
    receiver.status = 503
    with _api(ploomes) as api:
        _register(api, "Contact", "Update", receiver.url)
        api.post("/_sandbox/touch", json={"entity": "contacts", "id": 1000})
        (delivery,) = api.get("/_sandbox/webhooks/deliveries").json()
    assert delivery["attempts"] == 1 + ploomes.webhooks.retries and delivery["status"] == 503
    assert len(receiver.calls) == delivery["attempts"]
