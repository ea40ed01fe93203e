"""What both sandbox servers share: a threaded HTTP server on loopback and JSON request handling
with the fault switches (slow, dropped connection, 500, 429) applied the same way."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ploomes_cx.sandbox.faults import Fault, retry_after_header


class JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests and the demo read stdout
        return

    def send_json(
        self, status: int, body: Any, headers: dict[str, str] | None = None, raw: bytes | None = None
    ) -> None:
        data = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def send_empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else {}

    def apply_fault(self, fault: Fault | None, error_body: Any) -> bool:
        """Act out a queued fault; True when the request has been answered (or dropped) by it."""
        if fault is None:
            return False
        if fault.kind == "slow":
            time.sleep(fault.delay)
            return False
        if fault.kind == "drop":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return True
        if fault.kind == "500":
            self.send_json(500, error_body)
            return True
        if fault.kind == "429":
            headers = (
                {} if fault.retry_after is None else {"Retry-After": retry_after_header(fault.retry_after)}
            )
            self.send_json(429, {"message": "Too many requests"}, headers)
            return True
        return False  # malformed / short_page are acted out by the server that owns the body


POLL_SECONDS = 0.05  # how often a server's loop checks whether it was asked to stop


class LoopbackServer:
    """Starts a handler class on 127.0.0.1 in a daemon thread; port 0 picks a free port."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], host: str, port: int, name: str) -> None:
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._name = name

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        # `stop` waits for the loop's next look at its shutdown flag: at the default half second
        # that was up to 0.5 s per server stopped, over a minute of a test suite's time
        threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": POLL_SECONDS},
            name=self._name,
            daemon=True,
        ).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
