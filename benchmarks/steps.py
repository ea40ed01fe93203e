"""Where a staging run's time goes: wall-clock seconds per staging step, for `bench-staging --steps`.

Wraps the staging functions where their callers look them up (the modules import them by name),
so the figures cost a clock read per call, not a profiler's overhead; each step also shows the
process's peak memory when it returned. A step's time includes the
steps it calls: `read_parties` includes `read_payloads` and `custom_fields`.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from benchmarks.memory import peak_rss

# (module that calls it, name it is called by there, label)
STEPS = [
    ("ploomes_cx.staging.stage", "refresh_seen", "record_digests (what changed since)"),
    ("ploomes_cx.staging.stage", "build_staging", "build_staging"),
    ("ploomes_cx.staging.build", "read_parties", "read_parties"),
    ("ploomes_cx.staging.party", "_read", "  read_payloads (SQL: JSON + cleaning)"),
    ("ploomes_cx.staging.context", "read_fields", "  custom_fields"),
    ("ploomes_cx.staging.party", "normalize_party", "  python_cleaning"),
    ("ploomes_cx.staging.build", "write_next", "  identity_index (links, written out)"),
    ("ploomes_cx.staging.build", "stage_clients", "stage_clients"),
    ("ploomes_cx.staging.build", "stage_contacts", "stage_contacts"),
    ("ploomes_cx.staging.survivors", "cluster_by_identifiers", "  clustering (clients + contacts)"),
    ("ploomes_cx.staging.survivors", "_list_clusters", "  cluster_listing"),
    ("ploomes_cx.staging.clients", "fuzzy_candidates", "  fuzzy_candidates"),
    ("ploomes_cx.staging.contacts", "merge_duplicates", "  contact_merge (clustering, survivors)"),
    ("ploomes_cx.staging.contacts", "_email_rules", "  contact_rules"),
    ("ploomes_cx.staging.contacts", "_phone_rule", "  contact_rules"),
    ("ploomes_cx.staging.stage", "apply_contracts", "apply_contracts"),
    ("ploomes_cx.staging.validate", "split_valid", "  pandera"),
    ("ploomes_cx.staging.checks", "staging_check_results", "asset_checks"),
    ("ploomes_cx.runtime.duckdb_io", "_PandasHandler.handle_output", "writing_tables"),
]

# the steps that do not call one another: with the run's total, what is left is Dagster's own
TOP_LEVEL = (
    "record_digests (what changed since)",
    "build_staging",
    "apply_contracts",
    "asset_checks",
    "writing_tables",
)


class StepTimer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        # the process's peak RSS when the step last returned (bytes): the first step showing the
        # run's peak is the one that reached it
        self.peak: dict[str, int] = defaultdict(int)

    def install(self) -> None:
        for module_name, path, label in STEPS:
            owner: Any = importlib.import_module(module_name)
            *parents, attr = path.split(".")  # `Class.method` wraps a method on its class
            for parent in parents:
                owner = getattr(owner, parent)
            setattr(owner, attr, self._timed(getattr(owner, attr), label))

    def _timed(self, fn: Callable[..., Any], label: str) -> Callable[..., Any]:
        if inspect.isgeneratorfunction(fn):  # its work happens as it is iterated, not when called

            @functools.wraps(fn)
            def timed_items(*args: Any, **kwargs: Any) -> Iterator[Any]:
                items = fn(*args, **kwargs)
                while True:
                    started = time.perf_counter()
                    try:
                        item = next(items)
                    except StopIteration:
                        return
                    finally:
                        self._count(label, started)
                    yield item

            return timed_items

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._count(label, started)

        return timed

    def _count(self, label: str, started: float) -> None:
        self.seconds[label] += time.perf_counter() - started
        self.peak[label] = max(self.peak[label], peak_rss())

    def report(self, total: float) -> str:
        lines = [
            f"  {label:<40} {self.seconds.get(label, 0.0):6.1f}s   peak so far {self.peak[label] / 2**30:.2f} GiB"
            for label in dict.fromkeys(label for _, _, label in STEPS)
        ]
        inside = sum(self.seconds.get(label, 0.0) for label in TOP_LEVEL)
        lines.append(f"  {'the rest (metadata, Dagster)':<40} {total - inside:6.1f}s")
        return "\n".join(lines)
