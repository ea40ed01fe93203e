"""What was sent: one small JSON file per incident under `$PLOOMES_CX_HOME/alerts/<mapping>/`.

Several evaluations may meet the same incident: the failure and the success sensors both read a
run's checks, a test or the daemon may evaluate a tick twice, a daemon restarted from an old
cursor sees old runs again, and any process on the instance (the CLI as well as the daemon) may
report. The file is created with O_EXCL before anything is sent, so exactly one of them owns
the incident; it then records which targets took the message, so a target that failed is tried
again later (`pending`) and one that succeeded never receives it twice. While an evaluation
offers a record to its targets it holds the record's lock (`<record>.lock`, flock), so the retry
sensor never offers it a second time meanwhile, however long a target takes to answer.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

MAX_ATTEMPTS = 5  # after that a target is given up (logged): a broken webhook must not retry forever
RETRY_AFTER_SECONDS = 60.0


@dataclass
class SentRecord:
    mapping: str
    run_id: str
    cause: str
    subject: str
    text: str  # already redacted: the record holds no secret
    targets: dict[str, str] = field(default_factory=dict)  # target -> pending | sent | given_up
    errors: dict[str, str] = field(default_factory=dict)  # target -> its last failure, redacted
    attempts: int = 0
    updated_at: str = ""

    @property
    def pending_targets(self) -> list[str]:
        return [t for t, state in self.targets.items() if state == "pending"]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class SentStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, run_id: str, cause: str) -> Path:
        """A readable file name; a hash keeps two causes that differ only in odd characters apart."""
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", cause)[:80]
        digest = hashlib.sha256(cause.encode()).hexdigest()[:8]
        return self.directory / f"{run_id}--{slug}-{digest}.json"

    def seen(self, run_id: str, cause: str) -> bool:
        return self.path(run_id, cause).exists()

    def claim(self, record: SentRecord) -> bool:
        """Create the incident's file; False when another evaluation owns it already."""
        self.directory.mkdir(parents=True, exist_ok=True)
        record.updated_at = _now()
        try:
            fd = os.open(self.path(record.run_id, record.cause), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(asdict(record), out)
        return True

    def save(self, record: SentRecord) -> None:
        """Replace the file in one rename, so a reader never sees half a record."""
        record.updated_at = _now()
        path = self.path(record.run_id, record.cause)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(record)), encoding="utf-8")
        os.replace(temporary, path)

    def load(self, path: Path) -> SentRecord | None:
        try:
            return SentRecord(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None  # being replaced, or not ours: skipped this time

    @contextlib.contextmanager
    def sending(self, record: SentRecord) -> Iterator[bool]:
        """Hold the record's lock (a sibling `.lock` file, flock'ed: the JSON file itself is
        replaced on each save) while its targets are offered it; yields False, holding nothing,
        when another evaluation holds it. The lock dies with the process that held it."""
        with self._lock_file(record.run_id, record.cause) as fd:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True  # closing the file releases the lock

    def busy(self, run_id: str, cause: str) -> bool:
        """Whether an evaluation is offering this record to its targets right now."""
        if not self.lock_path(run_id, cause).exists():
            return False
        with self._lock_file(run_id, cause) as fd:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            return False

    def lock_path(self, run_id: str, cause: str) -> Path:
        return self.path(run_id, cause).with_suffix(".lock")

    @contextlib.contextmanager
    def _lock_file(self, run_id: str, cause: str) -> Iterator[int]:
        fd = os.open(self.lock_path(run_id, cause), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            yield fd
        finally:
            os.close(fd)

    def due(self, retry_after: float | None = None) -> list[SentRecord]:
        """Records with a target still pending, untouched for `retry_after` seconds and whose lock
        no evaluation holds: a send in progress elsewhere, however slow, is not doubled."""
        if not self.directory.exists():
            return []
        wait = RETRY_AFTER_SECONDS if retry_after is None else retry_after
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=wait)
        found = []
        for path in sorted(self.directory.glob("*.json")):
            record = self.load(path)
            if record is None or not record.pending_targets:
                continue
            if dt.datetime.fromisoformat(record.updated_at) <= cutoff and not self.busy(
                record.run_id, record.cause
            ):
                found.append(record)
        return found
