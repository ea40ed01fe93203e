"""Alerts sent by the CLI itself (alerts/cli.py): `ploomes-cx sync`, `reconcile` and the live runs
of `listen` tell their own run's incidents while the command runs, with no Dagster daemon, and the
daemon's sensors evaluated on the same instance afterwards send nothing more (the sent record);
a dry run tells nothing; a target that fails, or a report that breaks, changes no exit code and
prints one line without a secret.

The receivers, the alerting mapping and the sensor harness are test_alerts.py's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import dagster as dg
import pytest

from ploomes_cx.alerts import incidents
from ploomes_cx.alerts.sensors import store_of
from ploomes_cx.cli import main
from ploomes_cx.mapping import Mapping
from ploomes_cx.plan import Plan
from ploomes_cx.runtime.state import ensure_dagster_home
from ploomes_cx_tests import test_alerts as base
from ploomes_cx_tests.test_alerts import WINDOW, WRONG_TOKEN, Sensors, assert_no_secret, last_run, secrets

pytestmark = pytest.mark.persons(150)  # what each command tells: the account's size proves nothing (issue 29)

# test_alerts.py's fixtures, under their own names (a fixture is found by the module's globals)
dataset, webhook, smtp, alerting = base.dataset, base.webhook, base.smtp, base.alerting


@pytest.fixture
def daemon_sensors(alerting: Mapping) -> Iterator[Sensors]:
    """The alert sensors as a daemon would tick them, set up (first tick, cursor) before any run,
    so a run that ends later is one they do look at."""
    ensure_dagster_home()
    watched = Sensors(alerting)
    yield watched
    watched.instance.dispose()


def evaluate_failure_sensor(sensors: Sensors, m: Mapping, run: dg.DagsterRun) -> None:
    """The failure sensor's function on this run, as the daemon calls it (test_alerts.py does the same)."""
    failure = sensors.defs.resolve_sensor_def(f"{m.name}_alerts_failure")
    event = sensors.instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[0].dagster_event
    failure(
        dg.build_run_status_sensor_context(
            sensor_name=failure.name, dagster_instance=sensors.instance, dagster_run=run, dagster_event=event
        )
    )


def alert_lines(printed: pytest.CaptureResult) -> list[str]:
    """The lines the command printed about its alerts."""
    return [s for s in (printed.out + printed.err).splitlines() if s.startswith(("alert ", "2 alerts "))]


def records(m: Mapping) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(store_of(m.name).directory.glob("*.json"))]


def test_a_failed_sync_is_told_by_the_command_itself_and_the_daemon_sends_nothing_more(
    alerting, daemon_sensors, ploomes, customerx, webhook, smtp, monkeypatch, capfd
):
    monkeypatch.setenv("CUSTOMERX_TOKEN", WRONG_TOKEN)  # CustomerX answers 401: the load fails
    capfd.readouterr()
    assert main(["sync", alerting.source_path, "--window", WINDOW]) == 3
    printed = capfd.readouterr()
    run = last_run(daemon_sensors.instance, alerting)
    # sent while the command ran: no sensor has ticked since the sync started
    [text] = webhook.texts()
    assert text.startswith(f"[ploomes-cx] alerting: sync run failed (window {WINDOW})")
    assert "step alerting__load_clients failed:" in text and "$CUSTOMERX_TOKEN" in text
    assert text.endswith(f"run: http://127.0.0.1:3000/runs/{run.run_id}")
    assert smtp.bodies() == [text]
    line = f"alert sent by webhook and e-mail: alerting: sync run failed (window {WINDOW})\n"
    assert line in printed.out and len(alert_lines(printed)) == 1
    [record] = records(alerting)
    assert record["run_id"] == run.run_id and record["targets"] == {"webhook": "sent", "email": "sent"}
    assert_no_secret(
        [printed.out, printed.err, text, json.dumps(record)], secrets(ploomes, customerx, webhook)
    )
    # the daemon's turn: the run is an incident to its sensors, whose ticks and the failure
    # sensor on this very run find it sent
    watch = base.watch_of_defs(alerting)
    assert [i.cause for i in incidents.incidents_of(watch, daemon_sensors.instance, run)] == ["failed"]
    daemon_sensors.tick_all(alerting)
    evaluate_failure_sensor(daemon_sensors, alerting, run)
    daemon_sensors.tick_all(alerting)
    assert len(webhook.bodies) == 1 and len(smtp.messages) == 1 and len(records(alerting)) == 1


def test_refusals_above_the_share_are_told_by_the_sync_from_the_ledger_it_just_wrote(
    alerting, daemon_sensors, customerx, webhook, smtp, capfd
):
    """The ledger is read in the process that wrote it a moment before (the counts, not the fallback)."""
    customerx.refuse("contacts", lambda body: True, {"phones": ["is invalid"]})
    assert main(["sync", alerting.source_path, "--window", WINDOW]) == 1  # the run worked; records refused
    printed = capfd.readouterr()
    [text] = webhook.texts()
    assert text.startswith("[ploomes-cx] alerting: sync run: ") and "records refused" in text
    assert 'x contacts, HTTP 422: {"errors": {"phones": ["is invalid"]}' in text
    assert alert_lines(printed) == [f"alert sent by webhook and e-mail: {text.splitlines()[0][13:]}"]
    daemon_sensors.tick_all(alerting)
    assert len(webhook.bodies) == 1 and len(smtp.messages) == 1


def test_a_dry_run_sends_nothing_even_when_it_fails(
    alerting, daemon_sensors, ploomes, customerx, webhook, smtp, monkeypatch, capfd
):
    customerx.refuse("contacts", lambda body: True, {"phones": ["is invalid"]})
    assert main(["sync", alerting.source_path, "--window", WINDOW, "--dry-run"]) == 0
    monkeypatch.setenv("PLOOMES_USER_KEY", "pk-WRONG-key-0001")  # Ploomes answers 401: the extract fails
    assert main(["sync", alerting.source_path, "--window", WINDOW, "--dry-run"]) == 3
    run = last_run(daemon_sensors.instance, alerting)
    assert run.status == dg.DagsterRunStatus.FAILURE and incidents.is_dry_run(run)
    printed = capfd.readouterr()
    assert webhook.bodies == [] and smtp.messages == [] and records(alerting) == []
    assert alert_lines(printed) == []


def test_a_target_that_fails_or_a_broken_report_leaves_the_exit_code_and_shows_no_secret(
    alerting, daemon_sensors, ploomes, customerx, webhook, smtp, monkeypatch, capfd
):
    monkeypatch.setenv("CUSTOMERX_TOKEN", WRONG_TOKEN)
    webhook.answers = [500]
    capfd.readouterr()
    assert main(["sync", alerting.source_path, "--window", WINDOW]) == 3
    printed = capfd.readouterr()
    assert webhook.bodies == [] and len(smtp.messages) == 1
    [line] = alert_lines(printed)
    assert line.startswith(
        "alert could not be sent by webhook (webhook: webhook answered HTTP 500), sent by e-mail: "
        f"alerting: sync run failed (window {WINDOW}); the alerting_alerts_retry sensor tries again"
    )
    [record] = records(alerting)
    assert record["targets"] == {"webhook": "pending", "email": "sent"}
    hidden = secrets(ploomes, customerx, webhook)
    assert_no_secret([printed.out, printed.err], hidden)

    def broken(*args: object) -> list:  # an error that echoes the token and the webhook URL
        raise RuntimeError(f"cannot read the run with {WRONG_TOKEN} at {webhook.url}\nsecond line")

    monkeypatch.setattr("ploomes_cx.alerts.sensors.incidents_of", broken)
    assert main(["sync", alerting.source_path, "--window", WINDOW]) == 3
    printed = capfd.readouterr()
    expected = "alert could not be sent: RuntimeError: cannot read the run with $CUSTOMERX_TOKEN at $ALERTS_TEST_WEBHOOK"
    assert expected in printed.err and "second line" not in printed.err
    assert_no_secret([printed.out, printed.err], hidden)


def test_a_failed_reconcile_is_told_by_the_command_once(
    alerting, daemon_sensors, ploomes, customerx, webhook, smtp, monkeypatch, capfd
):
    main(["sync", alerting.source_path, "--window", WINDOW])  # CustomerX now holds records from us
    told = len(webhook.bodies)  # the sync's own refusals, if above the share, were told by the sync
    monkeypatch.setenv("PLOOMES_USER_KEY", "pk-WRONG-key-0001")  # listing the Ploomes Ids fails
    capfd.readouterr()
    assert main(["reconcile", alerting.source_path]) == 3
    printed = capfd.readouterr()
    [text] = webhook.texts()[told:]
    assert text.startswith(
        "[ploomes-cx] alerting: reconcile run failed (window the whole account (reconcile))"
    )
    assert alert_lines(printed) == [f"alert sent by webhook and e-mail: {text.splitlines()[0][13:]}"]
    [run] = daemon_sensors.instance.get_runs(filters=dg.RunsFilter(job_name=Plan.of(alerting).reconcile_job))
    daemon_sensors.tick_all(alerting)
    evaluate_failure_sensor(daemon_sensors, alerting, run)
    assert main(["reconcile", alerting.source_path, "--dry-run"]) == 3  # a dry run: nothing
    assert len(webhook.bodies) == told + 1 and len(smtp.messages) == told + 1


def test_a_failed_live_run_of_listen_is_told_by_listen_once(
    alerting, daemon_sensors, home, ploomes, customerx, webhook, smtp, capfd
):
    from ploomes_cx.live.events import EventStore, store_path
    from ploomes_cx.live.worker import LiveWorker

    main(["sync", alerting.source_path, "--window", WINDOW])
    told = len(webhook.bodies)
    record = ploomes.dataset.render("contacts", 0, False)
    customerx.token = "rotated-in-customerx"  # the live run's load gets 401
    with EventStore(store_path(home, "alerting")) as store:
        store.add({"Action": "Update", "Entity": "Contacts", "New": record, "Old": record, "WebhookId": 1})
        capfd.readouterr()
        # one batch, as listen's worker thread processes it
        assert LiveWorker(alerting, store, daemon_sensors.instance).process_once()
    printed = capfd.readouterr()
    [text] = webhook.texts()[told:]
    assert text.startswith("[ploomes-cx] alerting: live run failed (window live events ")
    assert alert_lines(printed) == [f"alert sent by webhook and e-mail: {text.splitlines()[0][13:]}"]
    [run] = daemon_sensors.instance.get_runs(filters=dg.RunsFilter(job_name=Plan.of(alerting).live_job))
    daemon_sensors.tick_all(alerting)
    evaluate_failure_sensor(daemon_sensors, alerting, run)
    assert len(webhook.bodies) == told + 1 and len(smtp.messages) == told + 1
