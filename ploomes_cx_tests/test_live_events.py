"""The event store of `listen` (durable, deduplicated, claimed per record in order, never dropped)
and the receiver's key check."""

from __future__ import annotations

import sqlite3
import time

import pytest

from ploomes_cx.live.events import BadEvent, EventStore
from ploomes_cx.live.receiver import authorized


def _body(record_id: int, action: str = "Update", name: str = "x", **extra: object) -> dict:
    record = {"Id": record_id, "Name": name}
    return {"Action": action, "Entity": "Contacts", "New": record, "Old": record, "WebhookId": 7, **extra}


def test_the_same_callback_is_stored_once_whatever_key_it_carried(tmp_path):
    with EventStore(tmp_path / "e.sqlite") as store:
        first = store.add(_body(1, ValidationKey="a"))
        again = store.add(_body(1, ValidationKey="b"))
        other = store.add(_body(1, name="y"))
        assert first == (1, True) and again == (1, False) and other[1] and other[0] > 1
    with sqlite3.connect(tmp_path / "e.sqlite") as db:  # the key is never written to disk
        assert all("ValidationKey" not in body for (body,) in db.execute("select body from events"))


@pytest.mark.parametrize(
    "body", [{}, {"Entity": "Contacts", "Action": "Update"}, _body(1) | {"New": {"Id": "1"}, "Old": None}]
)
def test_a_body_that_is_not_a_callback_is_refused(tmp_path, body):
    with EventStore(tmp_path / "e.sqlite") as store, pytest.raises(BadEvent):
        store.add(body)


def test_a_record_s_events_are_claimed_together_in_order_and_one_claimer_at_a_time(tmp_path):
    with EventStore(tmp_path / "e.sqlite") as store:
        for record_id, name in ((1, "a"), (2, "a"), (1, "b"), (3, "a")):
            store.add(_body(record_id, name=name))
        batch = store.claim("w1", limit=3)  # three events: two records, all of 1
        assert [(e.seq, e.record_id) for e in batch] == [(1, 1), (2, 2), (3, 1)]
        store.add(_body(1, name="c"))  # record 1 is being processed: its new event waits
        assert [e.record_id for e in store.claim("w2", limit=10)] == [3]
        store.done([1, 2, 3], "run-1")
        assert [(e.seq, e.record_id) for e in store.claim("w2", limit=10)] == [(5, 1)]


def test_a_failed_batch_comes_back_after_a_backoff_and_an_expired_claim_is_taken_over(tmp_path):
    with EventStore(tmp_path / "e.sqlite") as store:
        store.add(_body(1))
        store.add(_body(2))
        first = store.claim("w1", limit=1)
        store.failed([e.seq for e in first], "run-1", "CustomerX down")
        assert store.claim("w1", limit=10)[0].record_id == 2  # record 1 waits out its backoff
        assert store.health()["retrying"] == 1
        time.sleep(2.1)
        again = store.claim("w1", limit=10, lease=0.0)
        assert [(e.record_id, e.attempts) for e in again] == [(1, 1)]
        time.sleep(0.01)
        assert [e.record_id for e in store.claim("w2", limit=10)] == [1]  # its lease ran out, not 2's
        assert store.release("w") == 2 and store.health()["pending"] == 2


@pytest.mark.parametrize(
    "echo, header, body, ok",
    [
        ("any", "k3y", {}, True),
        ("any", None, {"ValidationKey": "k3y"}, True),
        ("any", "nope", {"ValidationKey": "nope"}, False),
        ("header", None, {"ValidationKey": "k3y"}, False),
        ("body", "k3y", {}, False),
        ("body", None, {"ValidationKey": "k3y"}, True),
        ("any", None, {"ValidationKey": 123}, False),
        ("any", None, None, False),
    ],
)
def test_the_key_is_looked_for_where_webhooks_key_echo_says(echo, header, body, ok):
    assert authorized(header, body, "k3y", echo) is ok
