"""The live sensor: when the Dagster daemon runs, it turns stored webhook events into `<name>_live`
runs instead of `listen` (which then only receives: `listen --receive-only`).

Each tick first settles the batches it launched (done when their run succeeded, due again after a
backoff when it failed or was cancelled, the lease renewed while it waits in the queue), then
claims the next batch and asks for one run with those events in its config. Stopped by default,
like every schedule of the project.
"""

from __future__ import annotations

import datetime as dt
import uuid

import dagster as dg

from ploomes_cx.live.assets import EVENTS_TAG, events_label, live_run_config
from ploomes_cx.live.events import EventStore, store_path
from ploomes_cx.mapping import Mapping
from ploomes_cx.plan import Plan
from ploomes_cx.runtime.state import home

SENSOR_OWNER = "sensor:"
BATCH_TAG = "ploomes_cx/live_batch"  # the claim a run processes: how a tick finds its run again
LEASE = 900.0  # seconds a claim holds before another claimer may take it over


def settle(store: EventStore, instance: dg.DagsterInstance) -> dict[str, int]:
    """Mark the batches of finished runs; renew the lease of those still queued or running."""
    counts = {"done": 0, "failed": 0, "waiting": 0}
    for owner, seqs in store.claimed_by(SENSOR_OWNER).items():
        batch = owner.removeprefix(SENSOR_OWNER)
        runs = instance.get_runs(filters=dg.RunsFilter(tags={BATCH_TAG: batch}), limit=1)
        if not runs:  # asked for, not created yet (or the tick died): the lease decides
            continue
        run = runs[0]
        if run.status == dg.DagsterRunStatus.SUCCESS:
            store.done(seqs, run.run_id)
            counts["done"] += len(seqs)
        elif run.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
            store.failed(seqs, run.run_id, f"run {run.run_id} ended {run.status.value}")
            counts["failed"] += len(seqs)
        else:
            store.renew(owner, LEASE)
            counts["waiting"] += len(seqs)
    return counts


def build_live_sensor(
    m: Mapping, job: dg.UnresolvedAssetJobDefinition, batch: int = 50
) -> dg.SensorDefinition:
    plan = Plan.of(m)

    @dg.sensor(
        name=f"{plan.live_job}_sensor",
        job=job,
        minimum_interval_seconds=5,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=f"Turns the webhook events `ploomes-cx listen {m.name} --receive-only` stores into "
        f"{plan.live_job} runs, {batch} events at most per run. Start it only where the daemon runs; "
        "without it, `listen` processes the events itself.",
    )
    def live_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        path = store_path(home(), m.name)
        if not path.exists():
            return dg.SkipReason(f"no webhook event stored yet ({path})")
        with EventStore(path) as store:
            settled = settle(store, context.instance)
            key = str(uuid.uuid4())
            events = store.claim(SENSOR_OWNER + key, batch, LEASE)
        if not events:
            return dg.SkipReason(f"no event due; settled {settled}")
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=key,
                    run_config=live_run_config(
                        m, [e.seq for e in events], sync_id=f"live-sensor-{dt.date.today()}"
                    ),
                    tags={BATCH_TAG: key, EVENTS_TAG: events_label(events), "ploomes_cx/trigger": "sensor"},
                )
            ]
        )

    return live_sensor
