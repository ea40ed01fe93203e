"""Alerts, mended (the audit of alerts/): an odd webhook URL neither leaks its secret nor stops
the other target or the retries; a slow target is not sent twice; a failed dry run tells nothing;
a sent-record folder that cannot be written still lets the alert out; and a record refused once in
a `sync` split into several runs is told once, not once per run.

The receivers, the alerting mapping and the sensor harness are test_alerts.py's.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ploomes_cx.alerts import sent as sent_module
from ploomes_cx.alerts.incidents import Watch
from ploomes_cx.alerts.messages import redact
from ploomes_cx.alerts.senders import SendError, post_webhook
from ploomes_cx.alerts.sensors import attempt, build_alert_sensors, report_run, store_of
from ploomes_cx.alerts.sent import SentRecord
from ploomes_cx.cli import main
from ploomes_cx.mapping import Mapping, load_mapping
from ploomes_cx.runtime.duckdb_io import database_path
from ploomes_cx.runtime.state import ensure_dagster_home
from ploomes_cx.sandbox.http import POLL_SECONDS
from ploomes_cx_tests import test_alerts as base
from ploomes_cx_tests.test_alerts import (
    PASSWORD_ENV,
    WEBHOOK_ENV,
    WINDOW,
    WRONG_TOKEN,
    assert_no_secret,
    last_run,
    secrets,
)
from ploomes_cx_tests.test_alerts_cli import alert_lines, records

pytestmark = pytest.mark.persons(
    150
)  # what is told, and how often: the account's size proves nothing (issue 29)

# test_alerts.py's fixtures, under their own names (a fixture is found by the module's globals)
dataset, webhook, smtp, alerting = base.dataset, base.webhook, base.smtp, base.alerting

SLACK_SECRET = "SECRET-slack-path-4471"


def a_watch(m: Mapping) -> Watch:
    """The mapping's Watch without building its definitions: enough for `attempt` and the retry."""
    assert m.alerts is not None
    names = tuple(sorted({WEBHOOK_ENV, PASSWORD_ENV, "CUSTOMERX_TOKEN", "PLOOMES_USER_KEY"}))
    return Watch(m.name, {}, {}, Path("/nonexistent.duckdb"), m.alerts, names)


def a_record(m: Mapping, run_id: str = "run-1", cause: str = "failed") -> SentRecord:
    subject = f"[ploomes-cx] {m.name}: sync run failed (window {WINDOW})"
    return SentRecord(
        m.name, run_id, cause, subject, f"{subject}\nrun: x", {"webhook": "pending", "email": "pending"}
    )


def retry_sensor(m: Mapping) -> dg.SensorDefinition:
    [sensor] = [s for s in build_alert_sensors(m, [], {}) if s.name.endswith("_alerts_retry")]
    return sensor


# ---- 1. an unusual webhook URL ----------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        f"http://127.0.0.1:9/services/T0/B0/{SLACK_SECRET} TOKEN",  # whitespace: http.client.InvalidURL
        f"hooks.slack.com/services/T0/B0/{SLACK_SECRET}",  # no scheme: ValueError
        f"http://127.0.0.1:9/services/T0/B0/{SLACK_SECRET}\n",  # a trailing newline from a file
    ],
)
def test_an_unusual_webhook_url_is_a_send_error_that_never_shows_the_url(url):
    with pytest.raises(SendError) as failed:
        post_webhook(url, "text", 2.0)
    assert SLACK_SECRET not in str(failed.value) and "/services/" not in str(failed.value)
    assert failed.value.__cause__ is None and failed.value.__suppress_context__


def test_redact_hides_the_parts_of_a_secret_url_an_error_quotes():
    url = "https://hooks.example.com/services/T0/B0/XyZ SECRET?token=abc123\n"
    texts = [
        "URL can't contain control characters. '/services/T0/B0/XyZ SECRET?token=abc123' (found ' ')",
        "unknown url type: 'hooks.example.com/services/T0/B0/XyZ SECRET'",
        "bad query 'token=abc123'",
        f"whole: {url.strip()}",
    ]
    for text in texts:
        cleaned = redact(text, {url: "$HOOK"})
        assert "SECRET" not in cleaned and "abc123" not in cleaned and "$HOOK" in cleaned
    assert "/services/" not in redact(texts[0], [url])


def test_a_broken_webhook_url_leaves_the_email_sent_and_the_record_saved(
    alerting, home, smtp, monkeypatch, caplog
):
    broken = f"http://127.0.0.1:9/services/T0/B0/{SLACK_SECRET} TOKEN"
    monkeypatch.setenv(WEBHOOK_ENV, broken)
    store, record = store_of(alerting.name), a_record(alerting)
    assert store.claim(record)
    with caplog.at_level(logging.WARNING):
        attempt(a_watch(alerting), store, record, logging.getLogger("test"))  # no exception
    assert len(smtp.messages) == 1  # the e-mail was still tried, and taken
    saved = store.load(store.path(record.run_id, record.cause))
    assert saved is not None and saved.attempts == 1
    assert saved.targets == {"webhook": "pending", "email": "sent"}
    assert saved.errors["webhook"] == "the webhook URL is not a usable http(s) URL (InvalidURL)"
    assert "not sent by webhook: the webhook URL is not a usable" in caplog.text
    assert_no_secret([caplog.text, json.dumps(saved.errors)], [SLACK_SECRET, "/services/", broken])


def test_the_retry_sensor_isolates_a_record_that_breaks_and_retries_the_rest(
    alerting, home, webhook, smtp, monkeypatch, capfd
):
    store = store_of(alerting.name)
    first, second = a_record(alerting, "run-1"), a_record(alerting, "run-2")
    for record in (first, second):
        record.targets = {"webhook": "pending", "email": "sent"}
        assert store.claim(record)
    monkeypatch.setattr(sent_module, "RETRY_AFTER_SECONDS", 0.0)
    from ploomes_cx.alerts import sensors as sensors_module

    real = sensors_module.attempt

    def breaks_on_the_first(watch, store, record, log):  # an error that echoes the webhook URL
        if record.run_id == "run-1":
            raise RuntimeError(f"cannot reach {webhook.url}")
        real(watch, store, record, log)

    monkeypatch.setattr(sensors_module, "attempt", breaks_on_the_first)
    capfd.readouterr()
    retry_sensor(alerting).evaluate_tick(dg.build_sensor_context())  # the tick does not fail
    logged = capfd.readouterr().err
    assert len(webhook.bodies) == 1  # run-2's, sent after run-1's broke
    after = store.load(store.path("run-2", "failed"))
    assert after is not None and after.targets["webhook"] == "sent"
    line = f"alert failed of run run-1 (alerting) could not be retried: RuntimeError: cannot reach ${WEBHOOK_ENV}"
    assert line in logged
    assert_no_secret([logged], [webhook.url, "/services/T000/B000/SECRET-hook-8841"])


def test_a_sync_whose_webhook_url_holds_a_space_still_sends_the_email_and_shows_no_secret(
    alerting, home, ploomes, customerx, smtp, monkeypatch, capfd
):
    """The audit's repro: `alert could not be sent: InvalidURL: ... '/services/...'`, no e-mail."""
    broken = f"http://127.0.0.1:9/services/T0/B0/{SLACK_SECRET} TOKEN"
    monkeypatch.setenv(WEBHOOK_ENV, broken)
    monkeypatch.setenv("CUSTOMERX_TOKEN", WRONG_TOKEN)
    capfd.readouterr()
    assert main(["sync", alerting.source_path, "--window", WINDOW]) == 3
    printed = capfd.readouterr()
    assert len(smtp.messages) == 1
    [line] = alert_lines(printed)
    assert line.startswith("alert could not be sent by webhook (webhook: ") and "sent by e-mail" in line
    [record] = records(alerting)
    assert record["targets"] == {"webhook": "pending", "email": "sent"} and record["attempts"] == 1
    assert_no_secret(
        [printed.out, printed.err, json.dumps(record)], [SLACK_SECRET, "/services/", WRONG_TOKEN]
    )


# ---- 2. a slow target ---------------------------------------------------------------------------
class SlowWebhook:
    """A webhook whose first POST is held until `release` is set; the others answer at once."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.arrived, self.release = threading.Event(), threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                first = not hook.arrived.is_set()
                hook.arrived.set()
                if first:
                    hook.release.wait(20)
                hook.bodies.append(body)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T0/B0/slow-SECRET"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": POLL_SECONDS}, daemon=True
        ).start()


@pytest.fixture
def slow_webhook() -> Iterator[SlowWebhook]:
    hook = SlowWebhook()
    yield hook
    hook.release.set()
    hook.server.shutdown()


def test_a_send_in_progress_is_not_sent_again_by_the_retry_sensor(
    alerting, home, slow_webhook, smtp, monkeypatch
):
    """A send longer than RETRY_AFTER_SECONDS (timeouts go up to 120 s) used to be doubled."""
    monkeypatch.setenv(WEBHOOK_ENV, slow_webhook.url)
    store, record = store_of(alerting.name), a_record(alerting)
    assert store.claim(record)
    sending = threading.Thread(
        target=attempt, args=(a_watch(alerting), store, record, logging.getLogger("t"))
    )
    sending.start()
    try:
        assert slow_webhook.arrived.wait(10)
        monkeypatch.setattr(sent_module, "RETRY_AFTER_SECONDS", 0.0)  # as if the send took minutes
        assert store.due() == []
        retry_sensor(alerting).evaluate_tick(dg.build_sensor_context())
    finally:
        slow_webhook.release.set()
        sending.join(20)
    assert len(slow_webhook.bodies) == 1 and len(smtp.messages) == 1
    saved = store.load(store.path(record.run_id, record.cause))
    assert saved is not None and saved.targets == {"webhook": "sent", "email": "sent"}
    assert store.due() == []


# ---- 3. a failed dry run ------------------------------------------------------------------------
def test_a_failed_dry_run_is_no_incident_for_the_daemon(alerting, home, webhook, smtp, monkeypatch):
    monkeypatch.setenv("PLOOMES_USER_KEY", "pk-WRONG-key-0001")  # Ploomes answers 401: the extract fails
    assert main(["sync", alerting.source_path, "--window", WINDOW, "--dry-run"]) == 3
    ensure_dagster_home()
    instance = dg.DagsterInstance.get()
    try:
        run = last_run(instance, alerting)
        assert run.status == dg.DagsterRunStatus.FAILURE
        assert report_run(base.watch_of_defs(alerting), instance, run, logging.getLogger("t")) == []
    finally:
        instance.dispose()
    assert webhook.bodies == [] and smtp.messages == [] and records(alerting) == []


# ---- 4. a sent-record folder that cannot be written ---------------------------------------------
def test_an_unwritable_record_folder_still_sends_and_says_so_once(
    alerting, home, ploomes, customerx, webhook, smtp, monkeypatch, capfd
):
    home.mkdir(parents=True, exist_ok=True)
    (home / "alerts").write_text("not a folder")  # every claim fails with NotADirectoryError
    monkeypatch.setenv("CUSTOMERX_TOKEN", WRONG_TOKEN)
    capfd.readouterr()
    assert main(["sync", alerting.source_path, "--window", WINDOW]) == 3
    printed = capfd.readouterr()
    assert len(webhook.bodies) == 1 and len(smtp.messages) == 1
    [warning] = [s for s in printed.err.splitlines() if "without de-duplication" in s]
    assert "NotADirectoryError" in warning
    assert any(s.startswith("alert sent by webhook and e-mail: ") for s in alert_lines(printed))
    assert_no_secret([printed.out, printed.err], secrets(ploomes, customerx, webhook))


# ---- 5. refusals in a sync split into several runs ----------------------------------------------
def test_a_record_refused_once_in_a_chunked_sync_is_told_once_not_once_per_run(
    alerting, home, ploomes, customerx, webhook, smtp
):
    window = "2026-11-02..2026-11-04"
    # the dry run that finds the victims stages the range in one run, as three would
    assert main(["sync", alerting.source_path, "--window", window, "--dry-run"]) == 0
    path = Path(alerting.source_path)  # one window per run: a range of three is three load runs
    path.write_text(path.read_text().replace("sync:\n", "sync:\n  windows_per_run: 1\n"))
    chunked = load_mapping(path)
    with duckdb.connect(str(database_path(home, "alerting")), read_only=True) as con:
        victims = {
            r[0]
            for r in con.execute(
                "select email from alerting.stg_contacts where aliases = '' and window_start = '2026-11-02'"
            ).fetchall()
        }
    customerx.refuse("contacts", lambda body: body.get("email") in victims, {"name": ["is invalid"]})
    assert main(["sync", chunked.source_path, "--window", window]) == 1
    with duckdb.connect(str(database_path(home, "alerting")), read_only=True) as con:
        per_run = con.execute(
            "select run_id, count(*) filter (where http_status is not null), count(*) "
            "from alerting.ledger where outcome = 'rejected' group by 1"
        ).fetchall()
    assert len(per_run) >= 2 and [called for _, called, _ in per_run].count(0) >= 1  # the repeats' runs
    told = [t for t in webhook.texts() if "records refused" in t.splitlines()[0]]
    assert len(told) == 1, told
