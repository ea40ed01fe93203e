"""A sync or reconcile leaves SIGTERM as it found it (runtime/signals.py), over real HTTP."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from ploomes_cx.cli import main
from ploomes_cx_tests.conftest import point_at, write_mapping


@pytest.mark.persons(60)  # what a run does to signal handlers does not depend on the account
def test_after_a_sync_and_a_reconcile_sigterm_still_stops_the_process_and_its_children(
    home, tmp_path, ploomes, customerx, monkeypatch
):
    """A shell ignores SIGINT in a command started with `&` (or `nohup`). Dagster's in-process run
    then left SIGTERM ignored too: `kill` stopped neither the command nor the processes it
    started afterwards (the wheel test's sandbox outlived its test by an hour)."""
    point_at(monkeypatch, ploomes, customerx)
    path = str(write_mapping(tmp_path, "signals", "quality:\n  max_rejected_ratio: 0.9\n"))
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        assert main(["sync", path, "--window", "2026-11-01"]) == 0
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        assert main(["reconcile", path, "--dry-run"]) == 0
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        child.terminate()
        assert child.wait(timeout=30) == -signal.SIGTERM
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])
