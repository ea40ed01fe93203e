"""A process's peak memory as the benchmarks report it.

`VmHWM` of `/proc/<pid>/status`: the high-water mark of the memory the process mapped since it
was started. `getrusage`'s `ru_maxrss` is not that: a forked child starts from its parent's
resident size, so a benchmark run in a child of a process that had just read a 2.3 GB file
reported 2.3 GB it never used.
"""

from __future__ import annotations

import resource
from pathlib import Path


def vm_hwm(status: str) -> int | None:
    """Bytes of the `VmHWM:` line of a `/proc/<pid>/status` text, None without one."""
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


def peak_rss() -> int:
    """This process's peak resident bytes; `ru_maxrss` where `/proc` is not there."""
    try:
        found = vm_hwm(Path("/proc/self/status").read_text())
    except OSError:
        found = None
    return found if found is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
