"""Alerts (issue 29, point 5): real runs on a real instance, the sensors evaluated against it, and
what a local webhook receiver and a local SMTP server got.

Each trigger test asserts the message names the mapping, the window and the cause, carries no
secret (keys, tokens, the webhook URL, the SMTP password, the values of the mapping's `*_env`
variables), and that evaluating again sends nothing more.
"""

from __future__ import annotations

import base64
import email
import json
import logging
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ploomes_cx import runner
from ploomes_cx.alerts import sent as sent_module
from ploomes_cx.alerts.sensors import build_alert_sensors, report_run, store_of, watch_of
from ploomes_cx.cli import main
from ploomes_cx.factory import build_integration_defs
from ploomes_cx.mapping import Mapping, MappingError, load_mapping, parse_mapping
from ploomes_cx.plan import Plan
from ploomes_cx.runtime.duckdb_io import database_path
from ploomes_cx.runtime.state import ensure_dagster_home
from ploomes_cx.sandbox import CustomerXSandbox, PloomesDataset, PloomesSandbox
from ploomes_cx.sandbox.http import POLL_SECONDS
from ploomes_cx.staging import checks as staging_checks
from ploomes_cx_tests.conftest import CX_TOKEN, SECRET_KEY, point_at, write_mapping

pytestmark = pytest.mark.persons(
    150
)  # what is told, and how often: the account's size proves nothing (issue 29)

WEBHOOK_ENV = "ALERTS_TEST_WEBHOOK"
PASSWORD_ENV = "ALERTS_TEST_SMTP_PASSWORD"
SMTP_PASSWORD = "smtp-SECRET-pass-5521"
WRONG_TOKEN = "cx-WRONG-SECRET-token-0007"
WINDOW = "2026-11-02"


@pytest.fixture
def dataset() -> PloomesDataset:
    return PloomesDataset(persons=60, seed=7)


# ---- the local receivers ---------------------------------------------------------------------
class Webhook:
    """A Slack-compatible incoming webhook on 127.0.0.1: stores each JSON body, answers `answers`
    in turn (then 200)."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.answers: list[int] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = hook.answers.pop(0) if hook.answers else 200
                if status == 200:
                    hook.bodies.append(json.loads(body))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # the path plays the part of Slack's secret path: it must never show anywhere
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/SECRET-hook-8841"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": POLL_SECONDS}, daemon=True
        ).start()

    def texts(self) -> list[str]:
        return [b["text"] for b in self.bodies]


class Smtp:
    """A minimal SMTP server on 127.0.0.1 (aiosmtpd is not installed): EHLO with AUTH PLAIN, MAIL,
    RCPT, DATA; keeps each message and the credentials it was given."""

    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []
        self.logins: list[str] = []
        smtp = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                self.say("220 localhost test SMTP")
                while line := self.rfile.readline().decode().rstrip("\r\n"):
                    verb = line.split(" ", 1)[0].upper()
                    if verb == "EHLO":
                        self.say("250-localhost\r\n250 AUTH PLAIN")
                    elif verb == "AUTH":
                        smtp.logins.append(base64.b64decode(line.split()[-1]).decode())
                        self.say("235 accepted")
                    elif verb == "DATA":
                        self.say("354 go on")
                        data = b""
                        while (chunk := self.rfile.readline()) != b".\r\n":
                            data += chunk
                        smtp.messages.append(email.message_from_bytes(data))
                        self.say("250 queued")
                    elif verb == "QUIT":
                        self.say("221 bye")
                        return
                    else:
                        self.say("250 ok")

            def say(self, text: str) -> None:
                self.wfile.write(text.encode() + b"\r\n")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": POLL_SECONDS}, daemon=True
        ).start()

    def bodies(self) -> list[str]:
        return [m.get_payload(decode=True).decode().replace("\r\n", "\n").strip() for m in self.messages]


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.server.shutdown()


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    server = Smtp()
    yield server
    server.server.shutdown()


@pytest.fixture
def alerting(
    home: Path,
    tmp_path: Path,
    ploomes: PloomesSandbox,
    customerx: CustomerXSandbox,
    webhook: Webhook,
    smtp: Smtp,
    monkeypatch: pytest.MonkeyPatch,
) -> Mapping:
    """A mapping with alerts to both local receivers, its environment pointed at the sandboxes."""
    point_at(monkeypatch, ploomes, customerx)
    monkeypatch.setenv(WEBHOOK_ENV, webhook.url)
    monkeypatch.setenv(PASSWORD_ENV, SMTP_PASSWORD)
    monkeypatch.delenv("PLOOMES_CX_UI_URL", raising=False)
    extra = f"""\
        quality:
          max_rejected_ratio: 0.9
        alerts:
          webhook_url_env: {WEBHOOK_ENV}
          max_refused_share: 0.05
          email:
            host: 127.0.0.1
            port: {smtp.port}
            starttls: false
            from: ploomes-cx@example.com
            to: [ops@example.com]
            password_env: {PASSWORD_ENV}
        """
    return load_mapping(write_mapping(tmp_path, "alerting", extra))


def secrets(ploomes: PloomesSandbox, customerx: CustomerXSandbox, webhook: Webhook) -> list[str]:
    return [SECRET_KEY, CX_TOKEN, WRONG_TOKEN, SMTP_PASSWORD, webhook.url, ploomes.url, customerx.url]


def assert_no_secret(texts: list[str], hidden: list[str]) -> None:
    for text in texts:
        for secret in hidden:
            assert secret not in text


class Sensors:
    """The mapping's alert sensors evaluated like the daemon does, tick after tick, with its cursor."""

    def __init__(self, m: Mapping) -> None:
        self.defs = build_integration_defs(m)
        self.instance = dg.DagsterInstance.get()
        self.cursors: dict[str, str | None] = {}
        for name in self.names(m):  # a first tick only sets the cursor, as in the daemon
            self.tick(name)

    @staticmethod
    def names(m: Mapping) -> list[str]:
        return [f"{m.name}_alerts_{s}" for s in ("failure", "canceled", "success")]

    def tick(self, name: str) -> None:
        sensor = self.defs.resolve_sensor_def(name)
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursors.get(name))
        self.cursors[name] = sensor.evaluate_tick(context).cursor

    def tick_all(self, m: Mapping) -> None:
        for name in self.names(m):
            self.tick(name)


def last_run(instance: dg.DagsterInstance, m: Mapping) -> dg.DagsterRun:
    return instance.get_runs(filters=dg.RunsFilter(job_name=Plan.of(m).job), limit=1)[0]


@pytest.fixture
def sensors(alerting: Mapping, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sensors]:
    """The sensors as the daemon ticks them; the CLI's own report of its runs (alerts/cli.py,
    tested in test_alerts_cli.py) is off, so what these tests see is what the sensors sent."""
    monkeypatch.setattr(runner, "report_cli_runs", lambda *args: None)
    ensure_dagster_home()
    watched = Sensors(alerting)
    yield watched
    watched.instance.dispose()


# ---- the three triggers ----------------------------------------------------------------------
def test_a_failed_run_is_told_once_with_its_step_and_error_and_no_secret(
    alerting, sensors, ploomes, customerx, webhook, smtp, monkeypatch, capfd
):
    monkeypatch.setenv("CUSTOMERX_TOKEN", WRONG_TOKEN)  # CustomerX answers 401: the load fails
    assert main(["sync", alerting.source_path, "--window", WINDOW]) == 3
    run = last_run(sensors.instance, alerting)
    sensors.tick_all(alerting)
    logged = capfd.readouterr()
    [text] = webhook.texts()
    assert text.startswith(f"[ploomes-cx] alerting: sync run failed (window {WINDOW})")
    assert "mapping: alerting" in text and f"window: {WINDOW}" in text
    assert "step alerting__load_clients failed:" in text and "$CUSTOMERX_TOKEN" in text
    assert text.endswith(f"run: http://127.0.0.1:3000/runs/{run.run_id}")
    [mail] = smtp.messages
    assert mail["Subject"] == f"[ploomes-cx] alerting: sync run failed (window {WINDOW})"
    assert mail["To"] == "ops@example.com" and smtp.bodies() == [text]
    assert smtp.logins == [f"\0ploomes-cx@example.com\0{SMTP_PASSWORD}"]  # logged in, never shown
    hidden = secrets(ploomes, customerx, webhook)
    records = [p.read_text() for p in (store_of("alerting").directory).glob("*.json")]
    assert "alerts sent for run" in logged.err
    assert_no_secret([text, mail.as_string(), logged.out, logged.err, *records], hidden)
    # the next ticks, and a fresh evaluation of the same run (a daemon restarted from an old cursor)
    sensors.tick_all(alerting)
    failure = sensors.defs.resolve_sensor_def("alerting_alerts_failure")
    failure(
        dg.build_run_status_sensor_context(
            sensor_name=failure.name,
            dagster_instance=sensors.instance,
            dagster_run=run,
            dagster_event=sensors.instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[
                0
            ].dagster_event,
        )
    )
    assert len(webhook.bodies) == 1 and len(smtp.messages) == 1


def test_a_failed_blocking_check_is_told_by_its_name_and_description_once(
    alerting, sensors, ploomes, customerx, webhook, smtp, monkeypatch
):
    real = staging_checks.referential_integrity

    def orphans_in_contacts(key, frame, clients):  # the staged contacts point at 2 missing clients
        result = real(key, frame, clients)
        if key.path[-1] != "stg_contacts":
            return result
        return dg.AssetCheckResult(
            asset_key=key, check_name="client_exists", passed=False, metadata={"orphans": 2, "note": "x"}
        )

    monkeypatch.setattr(staging_checks, "referential_integrity", orphans_in_contacts)
    assert main(["sync", alerting.source_path, "--window", WINDOW]) == 3
    run = last_run(sensors.instance, alerting)
    sensors.tick_all(alerting)
    # one incident, one message: the step the check failed is not told again as a failed run
    [text] = webhook.texts()
    assert text.startswith(f"[ploomes-cx] alerting: blocking check failed (window {WINDOW})")
    assert (
        "blocking check client_exists on alerting/stg_contacts failed: "
        "Every row points at a staged client (orphans: 2)"
    ) in text
    assert text.endswith(f"/runs/{run.run_id}") and "mapping: alerting" in text
    assert smtp.bodies() == [text]
    assert_no_secret([text], secrets(ploomes, customerx, webhook))
    sensors.tick_all(alerting)
    report_run(watch_of_defs(alerting), sensors.instance, run, logging.getLogger("test"))
    assert len(webhook.bodies) == 1 and len(smtp.messages) == 1


def test_refusals_above_the_share_are_told_with_counts_and_top_reasons_once(
    alerting, sensors, ploomes, customerx, webhook, smtp, home
):
    customerx.refuse("contacts", lambda body: True, {"phones": ["is invalid"]})
    assert main(["sync", alerting.source_path, "--window", WINDOW]) == 1  # the run worked; records refused
    run = last_run(sensors.instance, alerting)
    assert run.status == dg.DagsterRunStatus.SUCCESS
    with duckdb.connect(str(database_path(home, "alerting")), read_only=True) as con:
        refused, total = con.execute(
            "select count(*) filter (where outcome = 'rejected'), count(*) from alerting.ledger where run_id = ?",
            [run.run_id],
        ).fetchall()[0]
        called = con.execute(
            "select count(*) from alerting.ledger where run_id = ? and outcome = 'rejected' and http_status = 422",
            [run.run_id],
        ).fetchall()[0][0]
    assert refused / total > 0.05 and called > 0
    sensors.tick_all(alerting)
    [text] = webhook.texts()
    assert text.startswith(
        f"[ploomes-cx] alerting: sync run: {refused} of {total} records refused (window {WINDOW})"
    )
    assert f"CustomerX refused {refused} of {total} records" in text and "alerts above 5.0%" in text
    assert f'\n  {called} x contacts, HTTP 422: {{"errors": {{"phones": ["is invalid"]}}' in text
    assert "@" not in text.split("\nrun:")[0]  # the reasons carry no record's e-mail
    assert smtp.bodies() == [text]
    assert_no_secret([text], secrets(ploomes, customerx, webhook))
    sensors.tick_all(alerting)
    assert len(webhook.bodies) == 1 and len(smtp.messages) == 1


def test_a_cancelled_reconcile_run_is_told_once(alerting, sensors, webhook, smtp):
    """A run cancelled before it started: no window, the run's link."""
    job = sensors.defs.resolve_job_def(Plan.of(alerting).reconcile_job)
    run = sensors.instance.create_run_for_job(job)
    sensors.instance.report_run_canceled(run)
    sensors.tick_all(alerting)
    sensors.tick_all(alerting)
    [text] = webhook.texts()
    assert text.startswith(
        "[ploomes-cx] alerting: reconcile run cancelled (window the whole account (reconcile))"
    )
    assert "the run was cancelled before it finished" in text and text.endswith(f"/runs/{run.run_id}")
    assert smtp.bodies() == [text]


# ---- a target that fails, and the mapping key --------------------------------------------------
def test_a_target_that_fails_is_logged_without_its_url_and_tried_again_without_doubling_the_other(
    alerting, sensors, ploomes, customerx, webhook, smtp, monkeypatch, capfd
):
    monkeypatch.setenv("CUSTOMERX_TOKEN", WRONG_TOKEN)
    assert main(["sync", alerting.source_path, "--window", WINDOW]) == 3
    webhook.answers = [500]
    capfd.readouterr()
    sensors.tick_all(alerting)  # the tick itself does not fail
    logged = capfd.readouterr().err
    assert webhook.bodies == [] and len(smtp.messages) == 1
    assert "not sent by webhook: webhook answered HTTP 500; will try again (attempt 1 of 5)" in logged
    assert_no_secret([logged], secrets(ploomes, customerx, webhook))
    monkeypatch.setattr(sent_module, "RETRY_AFTER_SECONDS", 0.0)
    retry = sensors.defs.resolve_sensor_def("alerting_alerts_retry")
    retry.evaluate_tick(dg.build_sensor_context(instance=sensors.instance))
    retry.evaluate_tick(dg.build_sensor_context(instance=sensors.instance))
    assert len(webhook.bodies) == 1 and len(smtp.messages) == 1  # the e-mail was not sent twice
    assert webhook.texts() == smtp.bodies()


def test_alerts_key_is_optional_strict_and_needs_a_target(tmp_path):
    plain = load_mapping(write_mapping(tmp_path, "plain"))
    assert plain.alerts is None
    assert build_alert_sensors(plain, [], {}) == []
    assert not [s for s in build_integration_defs(plain).sensors or [] if "alerts" in s.name]
    with pytest.raises(MappingError) as wrong:
        parse_mapping(
            {"name": "x", "alerts": {"webhook_url_env": "HOOK", "webhook_url": "https://x"}}, "x.yaml"
        )
    assert "x.yaml" in str(wrong.value) and "alerts.webhook_url: unknown key" in str(wrong.value)
    assert "webhook_url_env" in str(wrong.value)
    with pytest.raises(MappingError) as bad_mail:
        parse_mapping(
            {"name": "x", "alerts": {"email": {"host": "h", "from": "a@b.c", "to": ["d@e.f"], "tls": 1}}},
            "x.yaml",
        )
    assert "alerts.email.tls: unknown key" in str(bad_mail.value) and "from" in str(bad_mail.value)
    with pytest.raises(MappingError, match="alerts: names no target"):
        parse_mapping({"name": "x", "alerts": {"max_refused_share": 0.1}}, "x.yaml")


def test_a_secret_an_error_echoes_is_shown_as_its_variable_and_a_wrapped_error_as_its_own():
    from dagster._utils.error import SerializableErrorInfo

    from ploomes_cx.alerts import incidents, messages

    incident = messages.failed_run(
        "acme",
        "r1",
        "sync",
        {
            "dagster/asset_partition_range_start": "2026-11-01",
            "dagster/asset_partition_range_end": "2026-11-09",
        },
        [
            messages.StepError(
                "acme__raw_fields", "cannot reach http://10.0.0.5:8443 with key pk-SECRET-77\nmore"
            )
        ],
    )
    hidden = {"http://10.0.0.5:8443": "$PLOOMES_BASE_URL", "pk-SECRET-77": "$PLOOMES_USER_KEY"}
    subject, text = messages.render(incident, "http://ui:3000/runs/r1", hidden)
    assert subject == "[ploomes-cx] acme: sync run failed (window 2026-11-01..2026-11-09)"
    assert "step acme__raw_fields failed: cannot reach $PLOOMES_BASE_URL with key $PLOOMES_USER_KEY\n" in text
    assert "more" not in text and text.endswith("run: http://ui:3000/runs/r1")
    cause = SerializableErrorInfo("ValueError: the first line\nsecond\n", [], "ValueError")
    wrapped = SerializableErrorInfo("Exceeded max_retries of 3\n", [], "RetryRequestedFromPolicy", cause)
    assert messages.first_line(incidents._user_error(wrapped)) == "ValueError: the first line"


def watch_of_defs(m: Mapping):
    plan = Plan.of(m)
    defs = build_integration_defs(m)
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    return watch_of(m, assets, {plan.job: "sync", plan.reconcile_job: "reconcile", plan.live_job: "live"})
