"""bench-staging's own bookkeeping: the peak memory it reports is the staging run's alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROBE = """
import sys
from pathlib import Path
from benchmarks.memory import peak_rss
from benchmarks.staging import copy_cache
copy_cache(Path(sys.argv[1]), Path(sys.argv[2]))
print(peak_rss())
"""


def test_copying_the_cache_does_not_raise_the_peak_memory(tmp_path: Path) -> None:
    """A copy through memory made the benchmark's parent process hold its 2.3 GB cache."""
    source, target = tmp_path / "raw.duckdb", tmp_path / "copy.duckdb"
    size = 256 * 2**20
    with source.open("wb") as f:
        f.truncate(size)
        f.seek(size - 1)
        f.write(b"x")
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(source), str(target)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert target.stat().st_size == size
    assert int(out.stdout.strip()) < size / 2


def test_the_peak_is_the_process_own_not_its_parents() -> None:
    """A child of a process holding 256 MB reports its own peak (`VmHWM`), not the parent's size
    at the fork, which `ru_maxrss` would: the staging run is measured in such a child."""
    held = bytearray(256 * 2**20)
    held[::4096] = b"x" * len(held[::4096])  # resident, not only reserved
    probe = "from benchmarks.memory import peak_rss; print(peak_rss())"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert int(out.stdout.strip()) < len(held) / 2
