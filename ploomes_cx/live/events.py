"""The webhook events `listen` has acknowledged, durable before the 200 (mapping-and-cli.md §4.3).

One SQLite file per mapping under the state folder (`live/<name>.sqlite`), in WAL mode with
`synchronous=FULL`: a commit is on disk when `add` returns, so a 200 is never answered for an event
a crash could lose. SQLite rather than the warehouse DuckDB file because three processes may use
it at once (the receiver, the Dagster run processing a batch, the daemon's sensor) and a DuckDB
file takes one writing process; rather than an append-only log because events change state
(pending, claimed, done, retried) and each change must be atomic. Python ships the driver.

An event is never deleted by processing: it goes pending -> claimed -> done, or back to pending
with a later `next_at` when its run failed (backoff doubling to `MAX_BACKOFF`), so nothing
acknowledged is dropped. The same callback delivered twice (same body) is stored once.

Payloads carry personal data (tax ids, e-mails), so the file is its owner's alone (0600, in a 0700
folder, SQLite gives its -wal and -shm files the same mode) and an applied event is deleted once
it is older than the retention and a window has caught up with it (`prune`); `secure_delete`
zeroes what is deleted instead of leaving it in free pages.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_BACKOFF = 300.0  # seconds between attempts of an event that keeps failing
INT64 = 2**63  # SQLite's integers are signed 64-bit: a larger Id cannot be stored, so it is no Id
SCHEMA = """
create table if not exists events (
    seq integer primary key autoincrement,
    digest text not null unique,
    received_at text not null,
    entity_set text not null,
    record_id integer not null,
    action text not null,
    webhook_id integer,
    body text not null,
    state text not null default 'pending',
    attempts integer not null default 0,
    next_at real not null default 0,
    claimed_by text,
    claimed_until real,
    run_id text,
    error text,
    done_at text
);
create index if not exists events_open on events (state, record_id);
"""


@dataclass(frozen=True)
class Event:
    seq: int
    received_at: str
    entity_set: str
    record_id: int
    action: str
    attempts: int


class BadEvent(ValueError):
    """A body that is not a Ploomes callback (answered 400, stored nowhere)."""


def parse(body: dict[str, Any]) -> tuple[str, int, str, int | None]:
    """(entity set, record Id, action, webhook Id) of a callback body (ploomes-api.md §10, C [S12]):
    the Id is the new record's, or the old one's for a delete."""
    entity_set, action = body.get("Entity"), body.get("Action")
    record = body.get("New") or body.get("Old")
    if not isinstance(entity_set, str) or not isinstance(action, str) or not isinstance(record, dict):
        raise BadEvent("not a Ploomes webhook call: Entity, Action and New or Old are required")
    record_id = record.get("Id")
    if not _int64(record_id):
        raise BadEvent("not a Ploomes webhook call: the record has no 64-bit integer Id")
    webhook = body.get("WebhookId")
    return entity_set, record_id, action, webhook if _int64(webhook) else None


def _int64(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -INT64 <= value < INT64


def digest(body: dict[str, Any]) -> str:
    """The same callback delivered twice has the same digest (the key it carried left out)."""
    kept = {k: v for k, v in body.items() if k != "ValidationKey"}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _private(path: Path) -> None:
    """Create the file readable by its owner only, and tighten the files an older version left
    0644 (the receiver, a run and the sensor all open it, so each does this). Never open an
    existing one: closing any descriptor of a file drops every POSIX lock this process holds on
    it, SQLite's included, and a live run shares the process with the receiver's connection."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
    for one in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            if one.stat().st_mode & 0o077:
                one.chmod(0o600)


class EventStore:
    """One connection, used by one thread at a time (the receiver's worker threads share it)."""

    def __init__(self, path: Path) -> None:
        _private(path)
        self.path = path
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("pragma journal_mode=wal")
        self._db.execute("pragma synchronous=full")
        self._db.execute("pragma secure_delete=on")
        self._db.executescript(SCHEMA)
        self._lock = threading.RLock()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("begin immediate")
            try:
                yield self._db
            except BaseException:
                self._db.execute("rollback")
                raise
            self._db.execute("commit")

    def _read(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def add(self, body: dict[str, Any]) -> tuple[int, bool]:
        """Store one callback; (its seq, whether it is new). On disk when this returns."""
        entity_set, record_id, action, webhook = parse(body)
        try:  # a lone surrogate (`"\ud800"`) parses but cannot be encoded: not an event either
            key = digest(body)
            kept = json.dumps({k: v for k, v in body.items() if k != "ValidationKey"}, ensure_ascii=False)
            kept.encode()
        except (ValueError, TypeError, RecursionError) as exc:
            raise BadEvent(f"the body cannot be stored ({type(exc).__name__})") from None
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        with self._transaction() as db:
            cursor = db.execute(
                "insert or ignore into events (digest, received_at, entity_set, record_id, action, webhook_id, body) "
                "values (?, ?, ?, ?, ?, ?, ?)",
                (key, now, entity_set, record_id, action, webhook, kept),
            )
            if cursor.rowcount:
                return int(cursor.lastrowid or 0), True
            row = db.execute("select seq from events where digest = ?", (key,)).fetchone()
            return int(row[0]), False

    def claim(self, owner: str, limit: int = 50, lease: float = 900.0) -> list[Event]:
        """The next batch: at most `limit` events (what `--batch` promises), oldest first, every
        open event of a record taken together so they are applied in order. A record with more
        open events than `limit` gives its oldest `limit`; the rest wait behind that claim. A claim
        whose lease ran out (its claimer died) is due again."""
        now, limit = time.time(), max(1, limit)
        due = "(state = 'pending' and next_at <= ?) or (state = 'claimed' and claimed_until < ?)"
        with self._transaction() as db:
            records = db.execute(  # each record has an event, so `limit` records are enough
                f"""select entity_set, record_id from events where state != 'done'
                    group by entity_set, record_id
                    having min(seq) in (select seq from events where {due})
                    order by min(seq) limit ?""",
                (now, now, limit),
            ).fetchall()
            if not records:
                return []
            placeholders = " or ".join("(entity_set = ? and record_id = ?)" for _ in records)
            params = [v for r in records for v in r]
            rows = _fill(
                records,
                db.execute(
                    f"""select seq, received_at, entity_set, record_id, action, attempts from events
                        where state != 'done' and ({placeholders}) order by seq""",
                    params,
                ).fetchall(),
                limit,
            )
            db.executemany(
                "update events set state = 'claimed', claimed_by = ?, claimed_until = ? where seq = ?",
                [(owner, now + lease, r[0]) for r in rows],
            )
        return [Event(*r) for r in rows]

    def prune(self, retention_days: float, keep: set[int] | frozenset[int] = frozenset()) -> int:
        """Delete the applied events done more than `retention_days` ago, except `keep` (those a
        window has not caught up with yet); how many. Only done events: a pending, claimed or
        retried one is never dropped. Once deleted, the same callback delivered again is stored
        and re-read once more, which writes nothing, its content being what CustomerX holds."""
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=retention_days)
        with self._transaction() as db:
            old = db.execute(
                "select seq from events where state = 'done' and done_at <= ?",
                (cutoff.isoformat(timespec="milliseconds"),),
            ).fetchall()
            gone = [(seq,) for (seq,) in old if seq not in keep]
            db.executemany("delete from events where seq = ?", gone)
        return len(gone)

    def claimed_by(self, owner_prefix: str) -> dict[str, list[int]]:
        """Open claims whose owner starts with `owner_prefix`: owner -> seqs."""
        rows = self._read(
            "select claimed_by, seq from events where state = 'claimed' and claimed_by like ? order by seq",
            (owner_prefix + "%",),
        )
        out: dict[str, list[int]] = {}
        for owner, seq in rows:
            out.setdefault(str(owner), []).append(int(seq))
        return out

    def done(self, seqs: list[int], run_id: str) -> None:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        with self._transaction() as db:
            db.executemany(
                "update events set state = 'done', run_id = ?, done_at = ?, error = null, claimed_by = null "
                "where seq = ? and state != 'done'",
                [(run_id, now, s) for s in seqs],
            )

    def failed(self, seqs: list[int], run_id: str, error: str) -> None:
        """Back to pending, due again after a backoff doubling with each attempt."""
        now = time.time()
        with self._transaction() as db:
            for seq in seqs:
                db.execute(
                    """update events set state = 'pending', attempts = attempts + 1, run_id = ?, error = ?,
                       claimed_by = null, next_at = ? + min(?, 2.0 * (1 << min(attempts, 16)))
                       where seq = ? and state != 'done'""",
                    (run_id, error[:2000], now, MAX_BACKOFF, seq),
                )

    def renew(self, owner: str, lease: float) -> None:
        """A claimer still at work keeps its claim `lease` seconds more."""
        with self._transaction() as db:
            db.execute(
                "update events set claimed_until = ? where state = 'claimed' and claimed_by = ?",
                (time.time() + lease, owner),
            )

    def release(self, owner_prefix: str) -> int:
        """Give back the claims of a claimer that is gone (a killed `listen`), due at once."""
        with self._transaction() as db:
            return db.execute(
                "update events set state = 'pending', claimed_by = null where state = 'claimed' and claimed_by like ?",
                (owner_prefix + "%",),
            ).rowcount

    def events(self, seqs: list[int]) -> list[Event]:
        """The events of a batch, oldest first (their bodies stay in the file, for a person to read)."""
        if not seqs:
            return []
        marks = ",".join("?" * len(seqs))
        rows = self._read(
            f"select seq, received_at, entity_set, record_id, action, attempts from events "
            f"where seq in ({marks}) order by seq",
            seqs,
        )
        return [Event(*r) for r in rows]

    def health(self) -> dict[str, Any]:
        """What a load balancer and a person look at: counts by state and the oldest open event."""
        counts = dict(self._read("select state, count(*) from events group by state"))
        oldest = self._read("select min(received_at) from events where state != 'done'")[0][0]
        retrying = self._read("select count(*) from events where state = 'pending' and attempts > 0")[0][0]
        return {
            "pending": int(counts.get("pending", 0)),
            "claimed": int(counts.get("claimed", 0)),
            "done": int(counts.get("done", 0)),
            "retrying": int(retrying),
            "oldest_open_received_at": oldest,
        }


def _fill(records: list[tuple], rows: list[tuple], limit: int) -> list[tuple]:
    """`rows` (the open events of `records`, by seq) cut to `limit`: whole records in the order of
    `records`, stopping at the first that does not fit, or the first record's oldest `limit`."""
    by_record: dict[tuple, list[tuple]] = {}
    for row in rows:
        by_record.setdefault((row[2], row[3]), []).append(row)
    taken: list[tuple] = []
    for record in records:
        its = by_record.get(tuple(record), [])
        if len(taken) + len(its) > limit:
            taken = taken or its[:limit]
            break
        taken += its
    return sorted(taken)


def store_path(home: Path, name: str) -> Path:
    return home / "live" / f"{name}.sqlite"
