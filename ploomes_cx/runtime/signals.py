"""SIGTERM as it was before an in-process Dagster run.

`execute_in_process` maps SIGTERM to the SIGINT handler while it runs (Dagster's
`capture_interrupts`, so Kubernetes' SIGTERM interrupts a run like Ctrl-C) and, when it ends,
sets SIGTERM to whatever SIGINT's handler then is. In a process whose SIGINT is ignored, which is
what a shell does to a command started with `&` or `nohup`, SIGTERM ends up ignored: `kill` no
longer stops a `ploomes-cx sync` between two windows or a `listen`, and every process started
afterwards inherits the ignored signal. In any other process it loses the handler it had.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def sigterm_kept() -> Iterator[None]:
    """Around an in-process run: SIGTERM's handler afterwards is the one it had before."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread sets handlers, and Dagster leaves them alone elsewhere
        return
    before = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        if before is not None:  # None: a handler installed from C, which Python cannot put back
            signal.signal(signal.SIGTERM, before)
