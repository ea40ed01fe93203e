"""`ploomes-cx listen` run as its own process for tests, and waiting on what it does."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

CLI = str(Path(sys.executable).parent / "ploomes-cx")


class Listener:
    """`ploomes-cx listen` in a subprocess on a free port, its output collected."""

    def __init__(self, mapping: str) -> None:
        self.mapping = mapping
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.lines: list[str] = []

    def start(self) -> Listener:
        self.proc = subprocess.Popen(
            [CLI, "listen", self.mapping, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=os.environ.copy(),
        )
        assert self.proc.stdout is not None
        match = None
        while match is None:
            line = self.proc.stdout.readline()
            assert line, "".join(self.lines) + self.proc.stdout.read()
            self.lines.append(line)
            match = re.search(r"on (http://\S+/ploomes/webhook)", line)
        self.url = match.group(1)
        return self

    @property
    def base(self) -> str:
        return self.url.removesuffix("/ploomes/webhook")

    def stop(self, sig: int = signal.SIGTERM) -> str:
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            out, _ = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.lines.append(out)
        return "".join(self.lines)


def wait_for(condition: Callable[[], object], timeout: float = 60.0, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def queue(base: str) -> dict:
    return httpx.get(f"{base}/health").json()
