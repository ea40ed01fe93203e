"""Python's cycle collector paused while staging computes.

Staging allocates hundreds of thousands of small containers on a million-person account (the
groups a shared value forms, one dict per listed cluster), and every full collection Python
starts on the way walks each tracked object again: nine full collections, 0.7 s of a 20-second
staging run (measured ad hoc with `gc.callbacks` around `benchmarks.staging.measure`).
The frames and lists staging builds form no reference cycles, so nothing waits for the collector
(the benchmark's peak memory is the same with it paused); it runs again when the block ends.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """The cycle collector off inside the block, then back as it was (another caller may have
    turned it off already)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
