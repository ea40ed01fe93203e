"""`ploomes-cx listen` started as a child process, for `demo --live`, `bench-live` and the tests:
it is started on a free port, its URL read from its first line, its output drained on a thread
(a full pipe would block it) and kept."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import httpx

from ploomes_cx.runtime.tls import tls_context

URL_LINE = re.compile(r"on (http://\S+/ploomes/webhook)")


class ListenProcess:
    def __init__(self, mapping: str, env: dict[str, str] | None = None, *extra: str) -> None:
        self.mapping, self.extra = mapping, extra
        self.env = env if env is not None else os.environ.copy()
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.lines: list[str] = []

    def start(self, timeout: float = 120.0) -> ListenProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ploomes_cx.cli", "listen", self.mapping, "--port", "0", *self.extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
        )
        threading.Thread(target=self._drain, name="listen-output", daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self.url:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("`ploomes-cx listen` did not start:\n" + self.output())
            time.sleep(0.05)
        return self

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            match = URL_LINE.search(line)
            if match and not self.url:
                self.url = match.group(1)

    @property
    def base(self) -> str:
        return self.url.removesuffix("/ploomes/webhook")

    def health(self) -> dict:
        # the process's one TLS context: httpx would load its CA bundle again for every poll
        return httpx.get(f"{self.base}/health", timeout=10, verify=tls_context()).json()

    def idle(self) -> bool:
        """Nothing stored waits or is being processed."""
        queue = self.health()
        return queue["pending"] + queue["claimed"] == 0

    def output(self) -> str:
        return "".join(self.lines)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> str:
        """Stop it (SIGTERM lets the run under way finish; SIGKILL is a crash); its whole output."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        time.sleep(0.1)  # the drain thread reads the last lines
        return self.output()


def wait_for(
    condition: Callable[[], object], timeout: float = 60.0, what: str = "", every: float = 0.05
) -> object:
    """`condition()`'s first truthy value; TimeoutError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
