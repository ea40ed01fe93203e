"""What the receiver allows a connection (issue 28), apart from the server (`server.py`) so that
the command line reads the defaults without importing uvicorn."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    header_timeout: float = 10.0  # seconds for the request line and headers: Ploomes sends them at once
    body_timeout: float = 30.0  # seconds for the body: 2 MiB at 70 KB/s, and a callback is tens of KB
    max_connections: int = 64  # open at once; Ploomes calls one at a time per webhook
