"""The live sensor (daemon mode of §4.3): it claims stored events, asks for a `<name>_live` run,
and settles the batch from the run's outcome; a failed run's events come back after a backoff."""

from __future__ import annotations

import time

import dagster as dg
import pytest

from ploomes_cx.cli import main
from ploomes_cx.factory import build_integration_defs
from ploomes_cx.live.events import EventStore, store_path
from ploomes_cx.mapping import load_mapping
from ploomes_cx.runtime.state import ensure_dagster_home
from ploomes_cx_tests.conftest import point_at, write_mapping

LOOSE = "quality:\n  max_rejected_ratio: 0.9\n"
# one event about one loaded client: the account's size proves nothing here (issue 29)
pytestmark = pytest.mark.persons(150)


def _tick(defs: dg.Definitions, name: str, instance: dg.DagsterInstance) -> dg.SensorResult | dg.SkipReason:
    sensor = defs.resolve_sensor_def(f"{name}_live_sensor")
    return sensor(dg.build_sensor_context(instance=instance))


def _run(defs: dg.Definitions, name: str, request: dg.RunRequest, instance: dg.DagsterInstance) -> bool:
    job = defs.resolve_job_def(f"{name}_live")
    result = job.execute_in_process(
        run_config=request.run_config, tags=request.tags, instance=instance, raise_on_error=False
    )
    return result.success


def test_the_sensor_turns_events_into_runs_and_retries_a_failed_batch(
    home, tmp_path, ploomes, customerx, monkeypatch
):
    point_at(monkeypatch, ploomes, customerx)
    path = write_mapping(tmp_path, "daemon", LOOSE)
    assert main(["sync", str(path), "--window", "2026-11-01"]) == 0
    m = load_mapping(path)
    org = sorted(c["external_id_client"] for c in customerx.store.records["clients"].values())[0]
    ploomes.dataset.touch("contacts", int(org), {"Name": "Pelo Sensor Ltda"})
    record = ploomes.dataset.render("contacts", ploomes.dataset.tables["contacts"].index_of(int(org)), False)
    with EventStore(store_path(home, "daemon")) as store:  # what `listen --receive-only` stores
        store.add({"Action": "Update", "Entity": "Contacts", "New": record, "Old": record, "WebhookId": 1})
    ensure_dagster_home()
    defs = build_integration_defs(m)
    with dg.DagsterInstance.get() as instance:
        first = _tick(defs, "daemon", instance)
        assert isinstance(first, dg.SensorResult) and len(first.run_requests) == 1
        assert isinstance(_tick(defs, "daemon", instance), dg.SkipReason)  # claimed: not asked twice
        token, customerx.token = customerx.token, "rotated-in-customerx"  # the run fails: 401
        assert not _run(defs, "daemon", first.run_requests[0], instance)
        customerx.token = token
        _tick(defs, "daemon", instance)  # settles: the batch is due again after its backoff
        with EventStore(store_path(home, "daemon")) as store:
            assert store.health()["retrying"] == 1
        time.sleep(2.1)
        again = _tick(defs, "daemon", instance)
        assert (
            isinstance(again, dg.SensorResult)
            and again.run_requests[0].run_key != first.run_requests[0].run_key
        )
        assert _run(defs, "daemon", again.run_requests[0], instance)
        _tick(defs, "daemon", instance)
    with EventStore(store_path(home, "daemon")) as store:
        assert store.health()["done"] == 1 and store.health()["pending"] == 0
    names = {c["external_id_client"]: c["trading_name"] for c in customerx.store.records["clients"].values()}
    assert names[org] == "Pelo Sensor Ltda"
