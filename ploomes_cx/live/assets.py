"""The mapping's live job (§4.3): `<name>_live` = the records of a batch of webhook events re-read
by Id (`raw_live`), then the same staging and load as a window, then the deletes the events
confirmed. No `from __future__ import annotations` here: Dagster reads the context annotation.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pandas as pd
from dagster import AssetExecutionContext
from dagster_duckdb import DuckDBResource

from ploomes_cx.customerx.client import CustomerXAuthError, CustomerXUnavailableError
from ploomes_cx.customerx.resource import CustomerXResource
from ploomes_cx.live.events import Event, EventStore, store_path
from ploomes_cx.live.reread import Reread, named_events, reread
from ploomes_cx.load import ledger
from ploomes_cx.mapping import Mapping
from ploomes_cx.metadata import RECORDS, ErrorKind, failure, markdown
from ploomes_cx.partitions import window_cutter
from ploomes_cx.plan import Plan
from ploomes_cx.ploomes.client import CallStats, PloomesAuthError, PloomesRequestError
from ploomes_cx.ploomes.entities import ENTITIES
from ploomes_cx.ploomes.resource import PloomesResource
from ploomes_cx.raw.assets import STEP_RETRIES, _failure
from ploomes_cx.raw.dependencies import fetch_needed, frontier
from ploomes_cx.raw.frames import DEPENDENCY_COLUMNS, Fetched, dependency_frame
from ploomes_cx.raw.needs import LIVE_TABLE
from ploomes_cx.reconcile import report, tombstones
from ploomes_cx.reconcile.apply import Applied, apply
from ploomes_cx.reconcile.assets import GONE_COLUMNS
from ploomes_cx.reconcile.decide import Decision, decide_confirmed
from ploomes_cx.reconcile.origins import Origin
from ploomes_cx.runtime.duckdb_io import add_new_columns, connection, table_exists
from ploomes_cx.runtime.state import home

EVENTS_TAG = "ploomes_cx/live_events"  # the first..last event seq a live run processes


class LiveConfig(dg.Config):
    """The events (seqs in the mapping's event store) this run processes; set by whoever claimed them."""

    events: list[int]


def _batch(m: Mapping, config: LiveConfig) -> list[Event]:
    """The events a run processes, read from the mapping's event store."""
    with EventStore(store_path(home(), m.name)) as store:
        return store.events(config.events)


def _describe(m: Mapping) -> str:
    return (
        "Records Ploomes webhooks said changed (`ploomes-cx listen`), each re-read by Id — the webhook's "
        "payload is a hint, never the truth — with the parents they need that nothing holds, appended to "
        f"`{m.name}.{LIVE_TABLE}`. Staging reads them beside the window extracts (the latest version of a "
        "record wins), so the same staging rules and the same load follow. A record Ploomes no longer has "
        f"after a delete event is written to `{m.name}.ploomes_gone`. Only the `{m.name}_live` job runs it, "
        "with the events it processes in its run config and metadata."
    )


def _events_frame(events: list[Event]) -> pd.DataFrame:
    return pd.DataFrame(
        [(e.seq, e.received_at, e.entity_set, e.record_id, e.action, e.attempts) for e in events],
        columns=["seq", "received_at", "entity", "record_id", "action", "earlier_attempts"],
    )


def _live_frame(m: Mapping, got: Reread, parents: list[Fetched], run_id: str) -> pd.DataFrame:
    """The rows to append: each in the window its change date falls in, as the extracts place them."""
    zone = ZoneInfo(m.sync.timezone)
    now = dt.datetime.now(zone)
    frame = dependency_frame(
        got.fetched + parents, dg.TimeWindow(now, now), ZoneInfo(m.ploomes.naive_datetime_timezone), run_id
    )
    cut = window_cutter(m)
    dated = frame["changed_at"].notna()
    frame.loc[dated, "window_start"] = frame.loc[dated, "changed_at"].map(cut)
    return frame


def _append(con: duckdb.DuckDBPyConnection, schema: str, frame: pd.DataFrame) -> None:
    con.execute(f"create schema if not exists {schema}")
    con.register("_live_rows", frame)
    try:
        con.execute(f"create table if not exists {schema}.{LIVE_TABLE} as select * from _live_rows limit 0")
        add_new_columns(con, f"{schema}.{LIVE_TABLE}", "_live_rows")  # a table an older version wrote
        con.execute(f"insert into {schema}.{LIVE_TABLE} by name select * from _live_rows")
    finally:
        con.unregister("_live_rows")


def _prune(con: duckdb.DuckDBPyConnection, schema: str) -> int:
    """Drop the live rows a window extract has since caught up with (the same record, changed as
    late or later): they decide nothing any more, and the table would otherwise only grow."""
    if not table_exists(con, schema, LIVE_TABLE):
        return 0
    pruned = 0
    for (entity,) in con.execute(f"select distinct entity from {schema}.{LIVE_TABLE}").fetchall():
        if not table_exists(con, schema, f"raw_{entity}"):
            continue
        pruned += con.execute(
            f"""delete from {schema}.{LIVE_TABLE} l where l.entity = ? and l.payload is not null
                and exists (select 1 from {schema}.raw_{entity} r where r.id = l.id and r.changed_at >= l.changed_at)""",
            [entity],
        ).fetchall()[0][0]
    return pruned


def forget_applied(m: Mapping, con: duckdb.DuckDBPyConnection) -> int:
    """Delete from the event store the events applied more than `webhooks.retention_days` ago
    whose live rows a window has caught up with (`_prune` dropped them): until then a live row
    still decides what staging sees, and its event says why it is there. Their payloads hold
    personal data (tax ids, e-mails) that nothing reads any more."""
    named: set[int] = set()
    if table_exists(con, m.name, LIVE_TABLE):
        rows = con.execute(
            f"select distinct needed_by from {m.name}.{LIVE_TABLE} where needed_by like 'webhook%'"
        ).fetchall()
        for (needed_by,) in rows:
            named |= named_events(str(needed_by))
    with EventStore(store_path(home(), m.name)) as store:
        return store.prune(m.webhooks.retention_days, keep=named)


def _tombstones(con: duckdb.DuckDBPyConnection, schema: str, got: Reread, run_id: str) -> int:
    """Remember what delete events confirmed gone; forget a record found again (restored)."""
    tombstones.ensure(con, schema)
    tombstones.remember(con, schema, {Origin(path, i): when for (path, i), when in got.gone.items()}, run_id)
    found = {Origin(ENTITIES[f.entity].path, f.id) for f in got.fetched}
    restored = found & tombstones.known(con, schema)
    tombstones.forget(con, schema, restored)
    return len(restored)


def build_live_asset(m: Mapping) -> dg.AssetsDefinition:
    plan = Plan.of(m)
    ploomes_key, duck_key = plan.ploomes_resource, plan.duckdb_resource

    @dg.asset(
        key=plan.live_key,
        group_name=plan.group("live"),
        kinds={"ploomes", "duckdb"},
        required_resource_keys={ploomes_key, duck_key},
        pool=plan.ploomes_pool,
        retry_policy=STEP_RETRIES,
        metadata={"dagster/column_schema": DEPENDENCY_COLUMNS},
        description=_describe(m),
    )
    def raw_live(context: AssetExecutionContext, config: LiveConfig) -> dg.MaterializeResult:
        resource: PloomesResource = getattr(context.resources, ploomes_key)
        duck: DuckDBResource = getattr(context.resources, duck_key)
        events = _batch(m, config)
        stats = CallStats()
        with (
            resource.one_step_at_a_time(context.log),
            resource.api(context.log) as api,
            connection(duck) as con,
        ):
            try:
                got = reread(api, m, events, stats)
                parents = fetch_needed(con, api, m, frontier(con, got.fetched), "true", stats)
            except (PloomesAuthError, PloomesRequestError) as exc:
                raise _failure(exc) from None
            frame = _live_frame(m, got, parents, context.run_id)
            pruned = _prune(con, m.name)
            forgotten = forget_applied(m, con)
            _append(con, m.name, frame)
            restored = _tombstones(con, m.name, got, context.run_id)
            held = int(con.execute(f"select count(*) from {m.name}.{LIVE_TABLE}").fetchall()[0][0])
        return dg.MaterializeResult(
            metadata={
                "events": markdown(_events_frame(events), limit=20),
                "event_count": len(events),
                RECORDS: len(got.fetched),
                "parents_fetched": sum(1 for p in parents if p.record is not None),
                "gone": dg.MetadataValue.json([f"{p} {i}" for p, i in got.gone]),
                "restored": restored,
                "superseded_rows_pruned": pruned,
                "applied_events_forgotten": forgotten,
                "dagster/row_count": held,
                "not_found": dg.MetadataValue.json([f"{s} {i}" for s, i in got.not_found]),
                "not_read_by_this_mapping": len(got.ignored),
                "requests": stats.requests,
                "preview": markdown(frame[["entity", "id", "changed_at", "needed_by"]], limit=10),
            }
        )

    return raw_live


def _confirmed_gone(
    con: duckdb.DuckDBPyConnection, schema: str, events: list[Event]
) -> dict[Origin, str | None]:
    """The records of the batch's delete events that the re-read confirmed gone (`ploomes_gone`)."""
    deleted = {Origin(f"/{e.entity_set}", e.record_id) for e in events if e.action.lower() == "delete"}
    if not deleted or not table_exists(con, schema, tombstones.TABLE):
        return {}
    rows = con.execute(
        f"select ploomes_set, ploomes_id, deleted_at from {schema}.{tombstones.TABLE}"
    ).fetchall()
    return {Origin(str(s), int(i)): w for s, i, w in rows if Origin(str(s), int(i)) in deleted}


def _apply_deletes(
    m: Mapping,
    con: duckdb.DuckDBPyConnection,
    customerx: CustomerXResource,
    context: AssetExecutionContext,
    gone: dict[Origin, str | None],
) -> tuple[Decision, Applied | None]:
    """`deletes.policy` for the confirmed gone, as a reconcile decides it; nothing above the guard."""
    statuses = ledger.contract_statuses(con, m.name) if table_exists(con, m.name, "contract_status") else {}
    today = dt.datetime.now(ZoneInfo(m.sync.timezone)).date()
    held = tombstones.held(con, m.name, dt.datetime.now(dt.UTC).replace(tzinfo=None))
    decision = decide_confirmed(m, held, statuses, gone, tombstones.known(con, m.name) - set(gone), today)
    if decision.guard:
        context.log.warning("live deletes removed nothing: " + "; ".join(decision.guard))
        return decision, None
    api = customerx.api(context.log)
    try:
        return decision, apply(decision, api, con, m.name, context.run_id)
    except (CustomerXAuthError, CustomerXUnavailableError) as exc:
        raise failure(str(exc), ErrorKind.CUSTOMERX) from None
    finally:
        api.close()


def build_live_deletes_asset(m: Mapping) -> dg.AssetsDefinition:
    plan = Plan.of(m)
    cx_key, duck_key = plan.customerx_resource, plan.duckdb_resource

    @dg.asset(
        key=plan.live_deletes_key,
        group_name=plan.group("live"),
        kinds={"customerx", "duckdb"},
        deps=[plan.load_key(e) for e in plan.staged],
        required_resource_keys={cx_key, duck_key},
        pool=plan.customerx_pool,
        metadata={"dagster/column_schema": GONE_COLUMNS},
        description=f"The records a batch's delete webhooks named and Ploomes no longer has, handled by "
        f"`deletes.policy` ({m.deletes.policy}) as `reconcile` would, with the same `deletes.max_share` guard "
        "(above it nothing is removed and the run says so; `reconcile` can then be run by hand).",
    )
    def live_deletes(context: AssetExecutionContext, config: LiveConfig) -> dg.MaterializeResult:
        customerx: CustomerXResource = getattr(context.resources, cx_key)
        duck: DuckDBResource = getattr(context.resources, duck_key)
        events = _batch(m, config)
        with customerx.one_step_at_a_time(context.log), connection(duck) as con:
            gone = _confirmed_gone(con, m.name, events)
            decision, applied = _apply_deletes(m, con, customerx, context, gone) if gone else (None, None)
            held_gone = tombstones.count(con, m.name)
        return dg.MaterializeResult(
            metadata={
                "gone_in_this_batch": len(gone),
                "policy": m.deletes.policy,
                "guard": "; ".join(decision.guard) if decision is not None else "",
                "outcomes": dg.MetadataValue.json(dict(applied.counts) if applied else {}),
                "preview": markdown(report.actions_frame(decision) if decision else pd.DataFrame(), limit=20),
                "dagster/row_count": held_gone,
            }
        )

    return live_deletes


def live_run_config(m: Mapping, seqs: list[int], sync_id: str) -> dict:
    """The live op's events, and the loads' sync id: a record CustomerX refused is sent again once
    per `listen` session, not once per batch."""
    plan = Plan.of(m)
    loads = {plan.load_op(e): {"config": {"dry_run": False, "sync_id": sync_id}} for e in plan.staged}
    return {
        "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
        "ops": {
            "__".join(key.path): {"config": {"events": seqs}}
            for key in (plan.live_key, plan.live_deletes_key)
        }
        | loads,
    }


def events_label(events: list[Event]) -> str:
    return f"{events[0].seq}..{events[-1].seq}" if len(events) > 1 else str(events[0].seq)


def build_live_job(m: Mapping, tags: dict[str, str]) -> "dg.UnresolvedAssetJobDefinition":
    """Re-read, stage, load: the window's path for the records of a batch of events."""
    plan = Plan.of(m)
    keys = [plan.live_key, *[plan.staging_key(e) for e in (*plan.staged, "rejected", "duplicate_clusters")]]
    keys += [plan.load_key(e) for e in plan.staged] + [plan.live_deletes_key]
    return dg.define_asset_job(
        plan.live_job,
        selection=dg.AssetSelection.assets(*keys),
        description=f"Apply a batch of Ploomes webhook events for mapping {m.name!r}: re-read each record by Id, "
        "stage and load like a window (`ploomes-cx listen`, or the live sensor when the daemon runs).",
        tags=tags,
        executor_def=dg.in_process_executor,
    )
