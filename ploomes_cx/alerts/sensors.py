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


def attempt(watch: Watch, store: SentStore | None, record: SentRecord, log: Log) -> None:
    """Offer the record to each target still pending; a failure (any exception) is logged and left
    pending, so a later tick of the retry sensor tries again (at most MAX_ATTEMPTS times).

    The record's lock is held meanwhile (another evaluation that holds it already is left to it),
    and the record is read again under it: what a slow send elsewhere took is not sent twice.
    `store` None: the sent records cannot be written; the targets are offered it once, unkept."""
    if store is None:
        _offer_all(watch, None, record, log)
        return
    with store.sending(record) as mine:
        if not mine:
            log.info(f"alert {record.cause} of run {record.run_id} is being sent by another evaluation")
            return
        fresh = store.load(store.path(record.run_id, record.cause))
        if fresh is not None:
            vars(record).update(vars(fresh))
        if record.pending_targets:
            _offer_all(watch, store, record, log)


def _offer_all(watch: Watch, store: SentStore | None, record: SentRecord, log: Log) -> None:
    """Each pending target in turn; the record saved (re-stamped) before each and after all, even
    when something unexpected breaks, so its attempts count and it is given up in the end."""
    hidden = secrets(watch)
    record.attempts += 1
    try:
        for target in record.pending_targets:
            if store is not None:
                store.save(record)  # stamped now: the retry's `due` counts from this target's start
            try:
                _offer(watch.alerts, target, record)
            except Exception as exc:  # a SendError, or anything else a sender let through
                _failed(watch, record, target, exc, hidden, log)
            else:
                record.targets[target] = "sent"
                record.errors.pop(target, None)
    finally:
        if store is not None:
            store.save(record)


def _offer(alerts: Alerts, target: str, record: SentRecord) -> None:
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


def _failed(
    watch: Watch, record: SentRecord, target: str, exc: Exception, hidden: dict[str, str], log: Log
) -> None:
    why = str(exc) if isinstance(exc, SendError) else f"{type(exc).__name__}: {messages.first_line(str(exc))}"
    why = messages.redact(why, hidden)
    record.errors[target] = why
    gave_up = record.attempts >= MAX_ATTEMPTS
    record.targets[target] = "given_up" if gave_up else "pending"
    then = "gave up" if gave_up else "will try again"
    log.warning(
        messages.redact(
            f"alert {record.cause} of run {record.run_id} ({watch.mapping}) not sent by {target}: "
            f"{why}; {then} (attempt {record.attempts} of {MAX_ATTEMPTS})",
            hidden,
        )
    )


def report_run(watch: Watch, instance: dg.DagsterInstance, run: dg.DagsterRun, log: Log) -> list[SentRecord]:
    """Send each incident of the run that no evaluation sent before; the records offered now.

    When the sent records cannot be written (the folder is not writable, or not a folder), each
    incident is sent anyway, without de-duplication, and one line (an error) says so: losing the
    incident would be worse, and a daemon's run-status cursor has moved past the run already."""
    store, hidden, offered = store_of(watch.mapping), secrets(watch), []
    for incident in incidents_of(watch, instance, run):
        subject, text = messages.render(incident, watch.alerts.run_url(incident.run_id), hidden)
        record = SentRecord(
            watch.mapping, incident.run_id, incident.cause, subject, text, _targets(watch.alerts)
        )
        kept: SentStore | None = store
        try:
            if store.seen(incident.run_id, incident.cause) or not store.claim(record):
                continue
        except OSError as exc:
            kept = None
            log.error(
                messages.redact(
                    f"alert {incident.cause} of run {incident.run_id} ({watch.mapping}): the sent records "
                    f"in {store.directory} cannot be written ({type(exc).__name__}: {exc.strerror or exc}); "
                    "sending it without de-duplication, it may be sent again",
                    hidden,
                )
            )
        attempt(watch, kept, record, log)
        offered.append(record)
    return offered


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
            causes = ", ".join(r.cause for r in sent)
            context.log.info(f"alerts sent for run {context.dagster_run.run_id}: {causes}")

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
        store, hidden = store_of(watch.mapping), secrets(watch)
        due = store.due()
        for record in due:
            try:
                attempt(watch, store, record, context.log)
            except Exception as exc:  # one broken record neither fails the tick nor stops the rest
                why = messages.first_line(f"{type(exc).__name__}: {exc}")
                context.log.error(
                    messages.redact(
                        f"alert {record.cause} of run {record.run_id} ({watch.mapping}) "
                        f"could not be retried: {why}",
                        hidden,
                    )
                )
        return dg.SkipReason(f"retried {len(due)} alert(s)" if due else "no alert waits for a retry")

    return retry


def _describe(m: Mapping, what: str) -> str:
    return (
        f"Alerts for mapping {m.name!r} on its {what} sync, reconcile and live runs "
        "(docs/alerts.md); each incident is sent once."
    )
