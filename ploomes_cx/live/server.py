"""The uvicorn server `listen` runs, with what uvicorn leaves out for a public endpoint (issue 28).

uvicorn closes a connection idle between requests (`timeout_keep_alive`) and bounds the header
block (h11's 16 KiB), but nothing else: a connection that never sends its headers, or sends a
body a byte at a time, stays open forever, and each holds a file descriptor and up to 2 MiB of
body. So the h11 protocol (uvicorn's own, always installed) gets three limits:

- `header_timeout`: the request line and headers complete within it, counted from the connection
  being made or the previous response being sent (an idle socket is closed after it);
- `body_timeout`: the body complete within it once the headers are in;
- `max_connections`: a connection beyond the cap is closed as soon as it is accepted, so an
  attacker's sockets cannot take every descriptor the process has (the store and the runs need
  some). Pending ones are closed by the timeouts, which frees room for Ploomes again.

A closed connection is logged at debug level only (a scan would otherwise flood the log); the
cap being reached is a warning, at most once a minute.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import ClassVar

import h11
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from ploomes_cx.live.limits import Limits

log = logging.getLogger("ploomes_cx.live")


class GuardedProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline per phase of a request and a cap on connections."""

    limits: ClassVar[Limits] = Limits()
    _deadline: asyncio.TimerHandle | None = None
    _phase: str | None = None
    _last_cap_warning: ClassVar[float] = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._warn_cap()
            transport.close()
            return
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._arm(None)
        super().connection_lost(exc)

    def _watch(self) -> None:
        """Arm the deadline of the phase the client is in: sending headers, sending a body, or
        neither (the app is answering, which is not the client's time)."""
        if self.transport.is_closing():
            return self._arm(None)
        state = self.conn.their_state
        self._arm("headers" if state is h11.IDLE else "body" if state is h11.SEND_BODY else None)

    def _arm(self, phase: str | None) -> None:
        if phase == self._phase and phase is not None:
            return
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._phase = phase
        if phase is not None:
            timeout = self.limits.header_timeout if phase == "headers" else self.limits.body_timeout
            self._deadline = self.loop.call_later(timeout, self._expire, phase)

    def _expire(self, phase: str) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            peer = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
            log.debug(f"closed the connection from {peer}: no complete {phase} in time")
            self.transport.close()

    def _warn_cap(self) -> None:
        now = time.monotonic()
        if now - GuardedProtocol._last_cap_warning >= 60:
            GuardedProtocol._last_cap_warning = now
            log.warning(
                f"{self.limits.max_connections} connections are open (the cap): new ones are closed "
                "until the header and body timeouts free some"
            )


def make_server(app: ASGIApp, limits: Limits) -> uvicorn.Server:
    """The server for `app` with `limits` (a protocol class of its own, so servers do not share)."""
    protocol = type("ListenProtocol", (GuardedProtocol,), {"limits": limits})
    config = uvicorn.Config(
        app,
        http=protocol,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=max(1, min(5, int(limits.header_timeout))),
    )
    return uvicorn.Server(config)
