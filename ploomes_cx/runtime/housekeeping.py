"""Cleaning up after CLI runs whose process died: their status and their pool slots.

A CLI sync executes its run inside its own process. Killed with -9 (or by the OOM killer) it
can neither report its end nor give back the concurrency slots its steps hold, and with a pool
limit of one every later step on that credential would wait forever. The daemon's run
monitoring only knows runs that a run launcher started, so this module covers the CLI's: the
next `ploomes-cx sync` calls it, and so does a sensor the daemon evaluates every minute.
"""

from __future__ import annotations

import os
import socket

import dagster as dg

PID_TAG, HOST_TAG = "ploomes_cx/pid", "ploomes_cx/host"
SENSOR_NAME = "ploomes_cx_reclaim_abandoned_cli_runs"


def reclaim_abandoned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark CLI runs whose process is gone as failed and give back their pool slots.

    A CLI run executes in its own process; killed with -9 it can neither report its end nor
    free the concurrency slots its steps hold, and with a pool limit of one the next sync would
    wait for that slot forever. Only runs this machine's CLI started are touched (their tags name
    the host and pid), so runs of the webserver, the daemon or other machines are left alone.
    """
    host = socket.gethostname()
    alive_statuses = [
        dg.DagsterRunStatus.STARTED,
        dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.NOT_STARTED,
    ]
    reclaimed = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=alive_statuses, tags={HOST_TAG: host})):
        pid = run.tags.get(PID_TAG, "")
        if not pid.isdigit() or _process_alive(int(pid)):
            continue
        instance.report_run_failed(run, message=f"ploomes-cx process {pid} ended without finishing this run")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        reclaimed.append(run.run_id)
    return reclaimed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dg.sensor(
    name=SENSOR_NAME,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks `ploomes-cx sync` runs whose process is gone (killed, crashed) as failed and gives "
    "back their pool slots, so steps of other runs on the same credential do not wait forever. Launches "
    "nothing. Only runs started on the daemon's own machine are checked.",
)
def reclaim_abandoned_cli_runs(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    reclaimed = reclaim_abandoned_runs(context.instance)
    if reclaimed:
        context.log.info(f"marked failed and freed the pool slots of {len(reclaimed)} run(s): {reclaimed}")
    return dg.SkipReason(f"{len(reclaimed)} abandoned CLI run(s) reclaimed")
