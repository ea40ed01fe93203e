"""Issue 28: the receiver sheds abuse without a key. Over real HTTP, against the server `listen`
runs (`make_server`): the key is checked before a body is parsed, idle, slow and surplus
connections are closed, a body that cannot be an event is a 400 with one log line; the event
store is its owner's alone and forgets applied events; `--batch` counts events."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import httpx
import pytest

from ploomes_cx.live import receiver
from ploomes_cx.live.events import EventStore, store_path
from ploomes_cx.live.limits import Limits
from ploomes_cx.live.process import ListenProcess, wait_for
from ploomes_cx.live.server import make_server
from ploomes_cx_tests.conftest import write_mapping

KEY = "whk-SECRET-abuse-4410"
HEADER = {"X-Ploomes-Validation-Key": KEY}
CALLBACK = {"Action": "Update", "Entity": "Contacts", "New": {"Id": 1000, "Name": "x"}, "WebhookId": 3}


class Lines(logging.Handler):
    """Every record the receiver's and uvicorn's loggers emit (uvicorn's do not reach the root)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.INFO:
            self.records.append(record)


class Served:
    """The receiver app on a free port in a thread of this process, so a test can spy on it."""

    def __init__(self, store: EventStore, echo: str, limits: Limits) -> None:
        self.store = store
        self.server = make_server(receiver.build_app(store, KEY, echo), limits)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/ploomes/webhook"
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.lines = Lines()
        self.loggers = [logging.getLogger(name) for name in ("ploomes_cx", "uvicorn")]

    def __enter__(self) -> Served:
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=10, what="the receiver started")
        for logger in self.loggers:  # after uvicorn configured its loggers, which drops handlers
            logger.addHandler(self.lines)
        return self

    def __exit__(self, *exc: object) -> None:
        for logger in self.loggers:
            logger.removeHandler(self.lines)
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def stored(self) -> int:
        return self.store.health()["pending"]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    started: list[Served] = []
    stores: list[EventStore] = []

    def start(echo: str = "any", limits: Limits | None = None) -> Served:
        stores.append(EventStore(tmp_path / f"events-{len(stores)}.sqlite"))
        started.append(Served(stores[-1], echo, limits or Limits()).__enter__())
        return started[-1]

    yield start
    for one in started:
        one.__exit__()
    for store in stores:
        store.close()


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often the receiver read a body and parsed one."""
    calls = {"read": 0, "parsed": 0}
    read, decode = receiver._body, receiver.decode

    async def counted_read(request):  # type: ignore[no-untyped-def]
        calls["read"] += 1
        return await read(request)

    def counted_decode(raw: bytes):  # type: ignore[no-untyped-def]
        calls["parsed"] += 1
        return decode(raw)

    monkeypatch.setattr(receiver, "_body", counted_read)
    monkeypatch.setattr(receiver, "decode", counted_decode)
    return calls


def _large(**extra: object) -> bytes:
    """A callback just under the 2 MiB limit."""
    body = {**CALLBACK, **extra, "Notes": ""}
    room = receiver.MAX_BODY - len(json.dumps(body)) - 64
    return json.dumps({**body, "Notes": "n" * room}).encode()


@pytest.mark.parametrize("echo, read", [("header", 0), ("any", 1), ("body", 1)])
def test_a_keyless_large_body_is_refused_without_being_parsed(serve, spies, echo, read):
    served = serve(echo)
    decoy = _large(New={"Id": 1000, "ValidationKey": "not-the-key"}, ValidationKey=KEY[:-1])
    for body in (_large(), decoy):
        assert httpx.post(served.url, content=body, timeout=10).status_code == 401
    assert spies == {"read": 2 * read, "parsed": 0} and served.stored() == 0
    # the same body with the key where `echo` allows it is parsed and stored: the spies see it
    sent = {"headers": HEADER} if echo != "body" else {}
    answer = httpx.post(served.url, content=_large(ValidationKey=KEY), timeout=10, **sent)
    assert answer.status_code == 200 and spies["parsed"] == 1 and served.stored() == 1


def test_the_key_at_the_top_of_the_body_is_what_counts(serve, spies):
    served = serve("body")
    nested = {
        **CALLBACK,
        "New": {"Id": 1000, "ValidationKey": KEY},
    }  # holds the key, not where Ploomes puts it
    assert httpx.post(served.url, json=nested).status_code == 401 and spies["parsed"] == 1
    escaped = json.dumps({**CALLBACK, "ValidationKey": KEY}).replace("-", "\\u002d")  # the same key
    assert httpx.post(served.url, content=escaped).status_code == 200 and served.stored() == 1


def _closed_after(conn: socket.socket) -> float:
    """Seconds until the server closes `conn` (reading and dropping whatever it answers)."""
    started = time.monotonic()
    while conn.recv(65536):
        pass
    return time.monotonic() - started


def test_an_idle_connection_is_closed_after_the_header_timeout(serve):
    served = serve(limits=Limits(header_timeout=0.5, body_timeout=1.0))
    idle, slow = served.connect(), served.connect()
    slow.sendall(b"POST /ploomes/webhook HTTP/1.1\r\nHost: x\r\n")  # headers never finished
    assert 0.3 < _closed_after(idle) < 3 and _closed_after(slow) < 3
    # a body half sent is closed after the body timeout, and nothing is stored
    half = served.connect()
    head = f"POST /ploomes/webhook HTTP/1.1\r\nHost: x\r\nContent-Length: {2**21}\r\n"
    half.sendall(f"{head}X-Ploomes-Validation-Key: {KEY}\r\n\r\n".encode() + b"{" * 1024)
    assert 0.6 < _closed_after(half) < 4 and served.stored() == 0
    # a connection kept alive after an answer is closed when no next request comes
    with served.connect() as kept:
        kept.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert kept.recv(65536).startswith(b"HTTP/1.1 200")
        assert _closed_after(kept) < 3
    assert httpx.post(served.url, json=CALLBACK, headers=HEADER).status_code == 200


def test_connections_above_the_cap_are_closed_at_once_until_one_frees(serve):
    served = serve(limits=Limits(header_timeout=30, max_connections=4))
    lines = served.lines
    held = [served.connect() for _ in range(4)]
    time.sleep(0.2)
    extra = served.connect()
    assert _closed_after(extra) < 2  # not the 30 s of the header timeout
    held.pop().close()
    time.sleep(0.2)
    assert httpx.get(served.url.replace("/ploomes/webhook", "/health")).status_code == 200
    assert [r.getMessage() for r in lines.records].count(lines.records[0].getMessage()) == 1
    assert "connections are open (the cap)" in lines.records[0].getMessage()
    for conn in held:
        conn.close()


NOT_EVENTS = {
    "nested arrays": b'{"Entity": "Contacts", "New": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "nested objects": json.dumps(
        {**CALLBACK, "New": {"Id": 1000, "x": json.loads('{"a":' * 40 + "1" + "}" * 40)}}
    ),
    "an Id of 2^63": json.dumps({**CALLBACK, "New": {"Id": 2**63}}),
    "a huge Id": json.dumps({**CALLBACK, "New": {"Id": 10**40}}),
    "a huge WebhookId": json.dumps({**CALLBACK, "WebhookId": -(2**63) - 1}),
    "NaN": json.dumps({**CALLBACK, "New": {"Id": 1000, "Score": float("nan")}}),
    "a lone surrogate": json.dumps({**CALLBACK, "New": {"Id": 1000, "Name": "\ud800"}}),
    "bad UTF-8": b'{"Entity": "\xff\xfe"}',
    "a list": b"[1, 2]",
}


@pytest.mark.parametrize("echo", ["header", "body"])
@pytest.mark.parametrize("name", list(NOT_EVENTS))
def test_a_body_that_cannot_be_an_event_gets_400_and_one_log_line(serve, echo, name):
    served = serve(echo)
    lines = served.lines
    body = NOT_EVENTS[name]
    body = body.encode() if isinstance(body, str) else body
    if echo == "body":  # the key in front, where a scan finds it
        body = b'{"ValidationKey": "' + KEY.encode() + b'", "Body": ' + body + b"}"
    answer = httpx.post(served.url, content=body, headers=HEADER if echo == "header" else {})
    assert answer.status_code == 400, answer.text
    messages = [r.getMessage() for r in lines.records]
    assert len(messages) == 1 and messages[0].startswith("refused a webhook call from 127.0.0.1: "), messages
    assert lines.records[0].exc_info is None and served.stored() == 0


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_store_is_readable_by_its_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        with EventStore(tmp_path / "live" / "a.sqlite") as store:
            store.add(CALLBACK)
            files = [store.path, *(store.path.with_name(f"a.sqlite-{s}") for s in ("wal", "shm"))]
            assert [_mode(p) for p in files] == [0o600] * 3 and _mode(tmp_path / "live") == 0o700
        legacy = tmp_path / "legacy.sqlite"  # a file an earlier version left readable by all
        sqlite3.connect(legacy).close()
        legacy.chmod(0o644)
        EventStore(legacy).close()
        assert _mode(legacy) == 0o600
    finally:
        os.umask(old)


def _backdate(path: Path, seqs: list[int], days: float) -> None:
    when = (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).isoformat(timespec="milliseconds")
    with sqlite3.connect(path) as db:
        db.executemany("update events set done_at = ? where seq = ?", [(when, s) for s in seqs])


def _seqs(path: Path) -> list[int]:
    with sqlite3.connect(path) as db:
        return [s for (s,) in db.execute("select seq from events order by seq")]


def test_applied_events_older_than_the_retention_are_gone_once_a_window_caught_up(home, tmp_path):
    from ploomes_cx.live.assets import forget_applied
    from ploomes_cx.mapping import load_mapping

    m = load_mapping(write_mapping(tmp_path, "kept", "webhooks:\n  retention_days: 2\n"))
    path = store_path(home, m.name)
    with EventStore(path) as store:
        for record_id in (1, 2, 3, 4, 5):
            store.add({**CALLBACK, "New": {"Id": record_id}})
        store.claim("w", limit=5)
        store.done([1, 2, 3], "run-1")
        store.failed([5], "run-1", "CustomerX down")
    _backdate(path, [1, 2], days=3)  # applied 3 days ago; 3 today; 4 claimed, 5 waits a retry
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("create schema kept")
        con.execute("create table kept.raw_live (entity varchar, id bigint, needed_by varchar)")
        con.execute("insert into kept.raw_live values ('organizations', 2, 'webhook Update (event 2)')")
        assert forget_applied(m, con) == 1 and _seqs(path) == [2, 3, 4, 5]
        con.execute("delete from kept.raw_live")  # a window extract caught up with record 2
        assert forget_applied(m, con) == 1 and _seqs(path) == [3, 4, 5]
    with sqlite3.connect(path) as db:  # what was deleted is not left in the file's free pages
        db.execute("pragma wal_checkpoint(truncate)")
    assert b'"Id": 1}' not in path.read_bytes() and b'"Id": 3}' in path.read_bytes()


def test_batch_limits_events_and_a_record_s_events_stay_in_order(tmp_path):
    with EventStore(tmp_path / "e.sqlite") as store:
        for record_id, n in ((1, 3), (2, 1), (3, 2)):
            for i in range(n):
                store.add({**CALLBACK, "New": {"Id": record_id, "Name": str(i)}})
        # seqs: record 1 -> 1, 2, 3; record 2 -> 4; record 3 -> 5, 6
        assert [e.seq for e in store.claim("a", limit=4)] == [1, 2, 3, 4]
        assert [e.seq for e in store.claim("b", limit=1)] == [5]  # a record split, oldest first
        assert store.claim("c", limit=50) == []  # 6 waits behind 5's claim
        store.done([5], "run")
        assert [e.seq for e in store.claim("c", limit=50)] == [6]


def test_listen_closes_idle_connections_and_logs_one_line_per_bad_body(home, tmp_path, monkeypatch):
    """The command wires the limits in: its own flags, its own output."""
    for name, value in {
        "PLOOMES_BASE_URL": "http://127.0.0.1:9",
        "PLOOMES_USER_KEY": "unused",
        "CUSTOMERX_BASE_URL": "http://127.0.0.1:9",
        "CUSTOMERX_TOKEN": "unused",
        "PLOOMES_WEBHOOK_KEY": KEY,
    }.items():
        monkeypatch.setenv(name, value)
    path = str(write_mapping(tmp_path, "guarded"))
    listener = ListenProcess(path, None, "--receive-only", "--header-timeout", "0.5").start()
    try:
        port = int(listener.url.split(":")[2].split("/")[0])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as idle:
            assert _closed_after(idle) < 3
        before = len(listener.lines)
        nested = b'{"New": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
        assert httpx.post(listener.url, content=nested, headers=HEADER).status_code == 400
        assert httpx.post(listener.url, json={**CALLBACK, "ValidationKey": KEY}).status_code == 200
        assert _mode(store_path(home, "guarded")) == 0o600
    finally:
        out = listener.stop()
    new = out.splitlines()[before:]
    assert [line for line in new if "refused" in line or "Traceback" in line or "Error" in line] == [
        next(line for line in new if "refused" in line)
    ]
    assert KEY not in out


@pytest.mark.persons(150)  # the window synced first only sets the story up (issue 29)
def test_a_live_run_forgets_an_applied_event_past_the_retention(
    home, tmp_path, ploomes, customerx, monkeypatch, listener_of
):
    """Through `listen` and real runs: with `retention_days: 0`, the run of the next event deletes
    an applied one no live row holds (the mapping reads no products, so nothing waits for a window)."""
    from ploomes_cx_tests.conftest import live_mapping

    path = live_mapping(monkeypatch, ploomes, customerx, tmp_path, "forget", KEY)
    with open(path, "a") as fh:
        fh.write("webhooks:\n  retention_days: 0\n")
    listener = listener_of(path)
    products = {**CALLBACK, "Entity": "Products", "New": {"Id": 71}}
    assert httpx.post(listener.url, json=products, headers=HEADER).status_code == 200
    wait_for(lambda: listener.health()["done"] == 1, what="the first event applied")
    store = store_path(home, "forget")
    assert _seqs(store) == [1] and _mode(store) == 0o600
    second = {**products, "New": {"Id": 72}}
    assert httpx.post(listener.url, json=second, headers=HEADER).status_code == 200
    answers = []  # the store stays readable while the run prunes it from another connection

    def applied() -> bool:
        answers.append(listener.health())
        return answers[-1].get("done") == 1 and answers[-1]["pending"] + answers[-1]["claimed"] == 0

    wait_for(applied, what="the second event applied", every=0.02)
    assert all(a["status"] == "ok" for a in answers), [a for a in answers if a["status"] != "ok"][:3]
    assert _seqs(store) == [2]
    assert "FAILED" not in listener.stop()
