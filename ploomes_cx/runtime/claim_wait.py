"""A run waiting for a pool slot sleeps until its claim is due, instead of spinning on a core.

Every step that calls an API claims its account's pool slot (limit 1): a second sync of the same
account, a live batch or the next chunk of a range run waits while another run holds it. Dagster's
in-process executor then loops on `ActiveExecution.get_next_step` and `sleep_til_ready`, which
sleeps `InstanceConcurrencyContext.interval_to_next_pending_claim_check()`; that method returns
`min(0, ...)`, never more than zero, so the loop never sleeps. The claim itself is checked again
only when its backoff ends (1 s, growing to 15 s), so the spinning gains nothing: it burned a
whole core for as long as the wait lasted (`test_parallel_syncs_...`: 38 -> 28 CPU-seconds with
this module, `/usr/bin/time pytest -p no:xdist -k parallel_syncs`, user + sys). Upstream saw the
`min` (dagster-io/dagster PR #20367) but closed it unmerged.

`install()` replaces the method with the time left until the earliest pending claim is due,
never below zero nor above Dagster's longest backoff: the loop sleeps exactly until there is
something to check, and picks the slot up at the same moment as before. A run waiting this way
notices a termination request (SIGTERM, Ctrl-C, the UI's Terminate) only when its step starts,
as it did while spinning: the in-process loop checks for interrupts at step boundaries only.
Dagster is pinned below 1.14; `ploomes_cx_tests/test_claim_wait.py` fails if our method stops
being used and if Dagster's own method stops returning zero for a claim not yet due (an upgrade
that fixes it: then drop this module).
"""

from __future__ import annotations

import time

from dagster._core.execution.plan.instance_concurrency_context import (
    MAX_CONCURRENCY_CLAIM_BLOCKED_INTERVAL,
    InstanceConcurrencyContext,
)

DAGSTERS = InstanceConcurrencyContext.interval_to_next_pending_claim_check


def _interval_to_next_pending_claim_check(self: InstanceConcurrencyContext) -> float:
    timeouts = getattr(self, "_pending_timeouts", None)
    if not self.has_pending_claims() or not timeouts or set(self.pending_claim_steps()) - timeouts.keys():
        return 0.0  # a claim not tried yet, or due now: check at once, as Dagster does
    # capped: a wall clock stepped back must not stretch the wait past Dagster's longest backoff
    due = min(timeouts.values()) - time.time()
    return max(0.0, min(float(MAX_CONCURRENCY_CLAIM_BLOCKED_INTERVAL), due))


def install() -> None:
    """Idempotent; called where our jobs are built, so every process that runs one has it."""
    InstanceConcurrencyContext.interval_to_next_pending_claim_check = _interval_to_next_pending_claim_check  # type: ignore[method-assign]


def installed() -> bool:
    """Whether this process's executor loop uses our wait (the tests ask)."""
    return (
        InstanceConcurrencyContext.interval_to_next_pending_claim_check  # type: ignore[comparison-overlap]
        is _interval_to_next_pending_claim_check
    )
