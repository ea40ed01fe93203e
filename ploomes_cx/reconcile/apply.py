"""A reconcile's writes: the cancel and delete calls its decision asks for, each remembered as it
lands (contract status, crosswalk) and each outcome in the ledger, so a killed reconcile resumes
where it stopped and a second one writes nothing."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import duckdb

from ploomes_cx.customerx import deletes
from ploomes_cx.customerx.bodies import gone_cancel_body
from ploomes_cx.customerx.client import (
    CallStats,
    CustomerXApi,
    CustomerXRejected,
    CustomerXUnavailableError,
)
from ploomes_cx.load import ledger
from ploomes_cx.reconcile import tombstones
from ploomes_cx.reconcile.decide import Action, Decision

KEPT = {
    "ignore": "kept as it is (deletes.policy: ignore)",
    "cancel": "kept (deletes.policy: cancel removes contracts only)",
    "delete": "kept (timeline entries are never deleted)",
}


@dataclass
class Applied:
    counts: Counter = field(default_factory=Counter)
    stats: CallStats = field(default_factory=CallStats)
    refusals: list[dict[str, Any]] = field(default_factory=list)


def apply(
    decision: Decision, api: CustomerXApi, con: duckdb.DuckDBPyConnection, schema: str, run_id: str
) -> Applied:
    """Remember what is gone, then make each call; CustomerX staying unavailable stops the rest
    (raised after the ledger is written)."""
    ledger.ensure(con, schema)
    tombstones.ensure(con, schema)
    tombstones.remember(con, schema, decision.gone, run_id)
    tombstones.forget(con, schema, decision.restored)
    done = Applied()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows: list[tuple[Any, ...]] = []
    acted = {(a.entity, a.external_id) for a in decision.actions}
    for h, o in decision.newly_gone:
        if (h.entity, h.external_id) not in acted:
            what = f"Ploomes {o.ploomes_set.strip('/')} {o.ploomes_id} is gone (deleted or merged away)"
            rows.append(
                (run_id, h.entity, h.external_id, "gone", None, f"{what}; {KEPT[decision.policy]}", now)
            )
            done.counts["gone_kept"] += 1
    try:
        for a in decision.actions:
            try:
                outcome, status, detail = _one(a, api, con, schema, run_id, done)
            except CustomerXUnavailableError as exc:
                done.counts["failed"] += 1
                rows.append((run_id, a.entity, a.external_id, "failed", None, str(exc), now))
                raise
            done.counts[outcome] += 1
            rows.append((run_id, a.entity, a.external_id, outcome, status, detail, now))
    finally:
        ledger.append_ledger(con, schema, rows)
    return done


def _one(
    a: Action, api: CustomerXApi, con: duckdb.DuckDBPyConnection, schema: str, run_id: str, done: Applied
) -> tuple[str, int | None, str]:
    try:
        if a.op == "cancel":
            api.call("cancel_contract", body=gone_cancel_body(a.external_id, a.when, a.why), stats=done.stats)
            ledger.set_contract_status(con, schema, a.external_id, "cancelled", run_id)
            return "cancelled", None, f"{a.why}; cancelled as of {a.when:%d/%m/%Y}"
        cx_id = ledger.customerx_id(con, schema, a.entity, a.external_id)
        gone = deletes.delete(api, a.entity, a.external_id, cx_id, done.stats)
        ledger.forget(con, schema, a.entity, a.external_id)
        return gone.outcome, 404 if gone.outcome == "already_absent" else None, f"{a.why}; {gone.detail}"
    except CustomerXRejected as exc:
        if len(done.refusals) < 20:
            done.refusals.append({"external_id": a.external_id, "status": exc.status, "body": exc.body[:200]})
        return "rejected", exc.status, exc.body[:500]
