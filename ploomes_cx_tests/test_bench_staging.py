"""bench-staging's own bookkeeping: the peak memory it reports is the staging run's alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROBE = """
import resource, sys
from pathlib import Path
from benchmarks.staging import copy_cache
copy_cache(Path(sys.argv[1]), Path(sys.argv[2]))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def test_copying_the_cache_does_not_raise_the_peak_memory(tmp_path: Path) -> None:
    """The measuring process is forked after the copy and inherits its parent's peak: a copy
    through memory made a 2.3 GB cache the 'peak' of a run that never used that much."""
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
