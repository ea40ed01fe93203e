"""One set of alert sensors per mapping with an `alerts:` key, run by the Dagster daemon.

- `<name>_alerts_failure` (a run failure sensor): a failed sync, reconcile or live run: its failed
  steps, its failed blocking checks, and its refusal share;
- `<name>_alerts_canceled` (a run status sensor on CANCELED);
- `<name>_alerts_success` (a run status sensor on SUCCESS): the refusal share of a run that worked;
- `<name>_alerts_retry`: sends again, a few times, what a target failed to take.

They watch every code location (`monitor_all_code_locations`): a `ploomes-cx sync` run is executed
in the CLI's own process and carries no code location, and a run-status sensor limited to its own
location would never see it. The mapping's jobs are picked out by name. They start running (an
`alerts:` key is the wish to be told), and only a running daemon (`dg dev`, `dagster-daemon run`)
ticks them; see docs/alerts.md for what happens without one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import dagster as dg

from ploomes_cx.alerts import messages
from ploomes_cx.alerts.config import Alerts
from ploomes_cx.alerts.incidents import Watch, incidents_of
from ploomes_cx.alerts.senders import SendError, post_webhook, send_email
from ploomes_cx.alerts.sent import MAX_ATTEMPTS, SentRecord, SentStore
from ploomes_cx.runtime.duckdb_io import database_path
from ploomes_cx.runtime.state import home

if TYPE_CHECKING:
    from ploomes_cx.mapping import Mapping

WEBHOOK, EMAIL = "webhook", "email"
Log = logging.Logger | logging.LoggerAdapter


def secret_env_names(data: Any) -> set[str]:
    """Every variable a mapping names in a `*_env` key, at any depth: their values are secrets or
    addresses of the accounts, and none may appear in a message."""
    found: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            if str(key).endswith("_env") and isinstance(value, str):
                found.add(value)
            else:
                found |= secret_env_names(value)
    elif isinstance(data, list):
        for item in data:
            found |= secret_env_names(item)
    return found


def secrets(watch: Watch) -> dict[str, str]:
    """The secret values set now, each with the `$NAME` that stands in for it in a message."""
    return {os.environ[n]: f"${n}" for n in watch.secret_envs if os.environ.get(n)}


def store_of(mapping: str) -> SentStore:
    return SentStore(home() / "alerts" / mapping)


def _targets(alerts: Alerts) -> dict[str, str]:
    return {t: "pending" for t, on in ((WEBHOOK, alerts.webhook_url_env), (EMAIL, alerts.email)) if on}


def attempt(watch: Watch, store: SentStore, record: SentRecord, log: Log) -> None:
    """Offer the record to each target still pending; a failure is logged and left pending, so
    a later tick of the retry sensor tries again (at most MAX_ATTEMPTS times)."""
    alerts, hidden = watch.alerts, secrets(watch)
    record.attempts += 1
    for target in record.pending_targets:
        try:
            if target == WEBHOOK:
                assert alerts.webhook_url_env is not None
                url = os.environ.get(alerts.webhook_url_env)
                if not url:
                    raise SendError(f"${alerts.webhook_url_env} is not set")
                post_webhook(url, record.text, alerts.webhook_timeout_seconds)
            else:
                assert alerts.email is not None
                env = alerts.email.password_env
                password = os.environ.get(env) if env else None
                if env and not password:
                    raise SendError(f"${env} is not set")
                send_email(alerts.email, password, record.subject, record.text)
            record.targets[target] = "sent"
            record.errors.pop(target, None)
        except SendError as exc:
            record.errors[target] = messages.redact(str(exc), hidden)
            gave_up = record.attempts >= MAX_ATTEMPTS
            record.targets[target] = "given_up" if gave_up else "pending"
            then = "gave up" if gave_up else "will try again"
            log.warning(
                messages.redact(
                    f"alert {record.cause} of run {record.run_id} ({watch.mapping}) not sent by {target}: "
                    f"{exc}; {then} (attempt {record.attempts} of {MAX_ATTEMPTS})",
                    hidden,
                )
            )
    store.save(record)


def report_run(watch: Watch, instance: dg.DagsterInstance, run: dg.DagsterRun, log: Log) -> list[str]:
    """Send each incident of the run that no evaluation sent before; the causes sent now."""
    store, hidden, sent = store_of(watch.mapping), secrets(watch), []
    for incident in incidents_of(watch, instance, run):
        if store.seen(incident.run_id, incident.cause):
            continue
        subject, text = messages.render(incident, watch.alerts.run_url(incident.run_id), hidden)
        record = SentRecord(
            watch.mapping, incident.run_id, incident.cause, subject, text, _targets(watch.alerts)
        )
        if store.claim(record):
            attempt(watch, store, record, log)
            sent.append(incident.cause)
    return sent


def watch_of(m: Mapping, assets: Sequence[dg.AssetsDefinition], jobs: dict[str, str]) -> Watch:
    assert m.alerts is not None
    blocking = {
        (spec.asset_key.to_user_string(), spec.name): spec.description or ""
        for asset in assets
        for spec in asset.check_specs
        if spec.blocking
    }
    names = secret_env_names(m.model_dump()) | set(m.alerts.env_names())
    return Watch(m.name, jobs, blocking, database_path(home(), m.name), m.alerts, tuple(sorted(names)))


def build_alert_sensors(
    m: Mapping, assets: Sequence[dg.AssetsDefinition], jobs: dict[str, str]
) -> list[dg.SensorDefinition]:
    """The mapping's alert sensors; none when it has no `alerts:` key. `jobs`: job name -> kind."""
    if m.alerts is None:
        return []
    watch = watch_of(m, assets, jobs)
    common: dict[str, Any] = {
        "monitor_all_code_locations": True,
        "default_status": dg.DefaultSensorStatus.RUNNING,
        "minimum_interval_seconds": 30,
    }

    def evaluate(context: dg.RunStatusSensorContext) -> None:
        """Returns nothing: a returned SkipReason would end the tick after this one run (Dagster's
        run-status loop returns after a run whose function returned a value)."""
        sent = report_run(watch, context.instance, context.dagster_run, context.log)
        if sent:
            context.log.info(f"alerts sent for run {context.dagster_run.run_id}: {', '.join(sent)}")

    @dg.run_failure_sensor(name=f"{m.name}_alerts_failure", description=_describe(m, "failed"), **common)
    def on_failure(context: dg.RunFailureSensorContext) -> None:
        evaluate(context)

    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.CANCELED,
        name=f"{m.name}_alerts_canceled",
        description=_describe(m, "cancelled"),
        **common,
    )
    def on_canceled(context: dg.RunStatusSensorContext) -> None:
        evaluate(context)

    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        name=f"{m.name}_alerts_success",
        description=_describe(m, "successful"),
        **common,
    )
    def on_success(context: dg.RunStatusSensorContext) -> None:
        evaluate(context)

    return [on_failure, on_canceled, on_success, _retry_sensor(watch)]


def _retry_sensor(watch: Watch) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{watch.mapping}_alerts_retry",
        description=f"Sends again, up to {MAX_ATTEMPTS} times, the alerts of mapping {watch.mapping!r} "
        "that a target failed to take (records under $PLOOMES_CX_HOME/alerts/).",
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
    )
    def retry(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        store = store_of(watch.mapping)
        due = store.due()
        for record in due:
            attempt(watch, store, record, context.log)
        return dg.SkipReason(f"retried {len(due)} alert(s)" if due else "no alert waits for a retry")

    return retry


def _describe(m: Mapping, what: str) -> str:
    return (
        f"Alerts for mapping {m.name!r} on its {what} sync, reconcile and live runs "
        "(docs/alerts.md); each incident is sent once."
    )
