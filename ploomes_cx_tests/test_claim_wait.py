"""A step waiting for its account's pool slot sleeps until its claim is due (runtime/claim_wait.py)."""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext

import ploomes_cx.factory  # noqa: F401  (installs the wait, as every process that runs our jobs does)
from ploomes_cx.runtime import claim_wait
from ploomes_cx.runtime.state import ensure_dagster_home


def test_building_our_jobs_installs_the_wait() -> None:
    assert claim_wait.installed()


def test_a_claim_refused_because_another_run_holds_the_slot_is_checked_again_after_its_backoff(
    home: Path,
) -> None:
    ensure_dagster_home()
    instance = dg.DagsterInstance.get()
    try:
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default("ploomes_api__key")
        assert storage.claim_concurrency_slot("ploomes_api__key", "another-run", "its_step").is_claimed
        run = instance.create_run_for_job(dg.GraphDefinition("g").to_job())
        with InstanceConcurrencyContext(instance, run) as context:
            assert not context.claim("ploomes_api__key", "raw_persons")
            wait = context.interval_to_next_pending_claim_check()
            # Dagster's first backoff is 1 s; its own method says 0 (or less) here, and the
            # executor's loop spun until the slot was free. Once an upgrade makes it say more,
            # claim_wait.py has done its job and goes.
            assert 0.5 < wait <= 1.0
            assert claim_wait.DAGSTERS(context) <= 0, "Dagster fixed its wait: drop runtime/claim_wait.py"
            assert not context.claim("ploomes_api__key", "raw_persons")  # not due: no query, still waiting
            storage.free_concurrency_slots_for_run("another-run")
            time.sleep(wait)
            assert context.interval_to_next_pending_claim_check() == 0.0
            assert context.claim("ploomes_api__key", "raw_persons")  # due, and the slot is free
            assert not context.has_pending_claims()
            assert context.interval_to_next_pending_claim_check() == 0.0
    finally:
        instance.dispose()
