"""A second sync of a window where nothing changed prints each step's line once: the load steps
say what they did, not three "N of M records, ETA <1m" lines crossed in one instant."""

from __future__ import annotations

import re

from ploomes_cx.cli import main
from ploomes_cx.load.progress import LoadProgress
from ploomes_cx_tests.conftest import point_at, write_mapping

WINDOW = "2026-11-01"


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)


def test_records_that_cost_no_request_make_no_progress_line() -> None:
    unchanged = Log()
    progress = LoadProgress(total=1_000, requests_per_minute=60, log=unchanged, every_seconds=0)
    for done in range(1_001):
        progress.tick(done, requests=3)  # the adoption's listing, then nothing to send
    assert unchanged.lines == []


def test_a_load_that_starts_sending_halfway_speaks_from_then_on_each_line_once() -> None:
    log = Log()
    progress = LoadProgress(total=1_000, requests_per_minute=60, log=log, every_seconds=3600)
    for done in range(1_001):
        progress.tick(done, requests=max(0, done - 500))  # the first half unchanged
    assert log.lines == [
        "progress: 501 of 1,000 records, ETA <1m at 60/min",
        "progress: 750 of 1,000 records, ETA 1m at 60/min",
    ]
    assert len(set(log.lines)) == len(log.lines)


def test_an_unchanged_second_sync_prints_each_line_once(
    home, tmp_path, ploomes, customerx, monkeypatch, capsys
):
    point_at(monkeypatch, ploomes, customerx)
    mapping = str(write_mapping(tmp_path, "again", "quality:\n  max_rejected_ratio: 0.9\n"))
    assert main(["sync", mapping, "--window", WINDOW]) == 0
    first = capsys.readouterr().out
    assert re.search(r"load_clients: \d+ of \d+ records, ETA", first)  # a load that sends says where it is
    assert main(["sync", mapping, "--window", WINDOW]) == 0
    steps = [
        re.sub(r"^\s+\[\s*[\d.]+s\] ", "", line)
        for line in capsys.readouterr().out.splitlines()
        if "s] " in line
    ]
    loads = [s for s in steps if s.startswith("load_")]
    assert [s.split(":")[0] for s in loads] == [
        "load_clients",
        "load_contacts",
        "load_contracts",
        "load_timeline",
    ]
    assert all(re.fullmatch(r"load_\w+: 0 created, 0 updated, \d+ unchanged, 0 failed", s) for s in loads)
    assert len(set(steps)) == len(steps)
