"""Make CustomerX hold what a staging table says, at the smallest number of calls.

Per record: unchanged since last sent (same content hash) -> no call; known to CustomerX ->
one PUT; new -> adopt an existing CustomerX record the identity rule says is the same
(`identity.CustomerXIndex`: by our external id, a merged alias's, or the mapping's identifiers;
never across two valid documents, never one another record of ours holds), addressed by its
external id or, lacking one, its numeric id, with one PUT; else one POST. Timeline entries are
posted once, ever. A record whose client is not in CustomerX waits for it without a call; a
record CustomerX refused is sent once per `sync` command. Each outcome goes to the ledger; a
refused or failed record is not marked sent, so the next sync tries it again.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from ploomes_cx import loadstate
from ploomes_cx.customerx.client import (
    CallStats,
    CustomerXApi,
    CustomerXRejected,
    CustomerXUnavailableError,
)
from ploomes_cx.identity import IDENTIFIER_COLUMNS, CustomerXIndex
from ploomes_cx.mapping import Mapping
from ploomes_cx.payloads import BUILDERS, content_hash, field_diff

OPERATIONS = {
    "clients": ("list_clients", "create_client", "update_client", "external_id_client"),
    "contacts": ("list_contacts", "create_contact", "update_contact", "external_id_contact"),
    "contracts": ("list_contracts", "create_contract", "update_contract", "external_id_contract"),
}
# Writing to a record that has no external id (made by hand in CustomerX): by its numeric id.
UPDATE_BY_ID = {
    "clients": "update_client_by_id",
    "contacts": "update_contact_by_id",
    "contracts": "update_contract_by_id",
}
UPDATE_BY_PATH_ID = {
    "clients": "update_client_by_path_id",
    "contacts": "update_contact_by_path_id",
    "contracts": "update_contract_by_path_id",
}
MAX_CONSECUTIVE_FAILURES = 3


@dataclass
class LoadReport:
    counts: Counter = field(default_factory=Counter)
    stats: CallStats = field(default_factory=CallStats)
    refusals: list[dict[str, Any]] = field(default_factory=list)
    diffs: list[dict[str, Any]] = field(default_factory=list)


def _clean(value: Any) -> Any:
    return (
        None if value is None or (isinstance(value, float) and value != value) or value is pd.NaT else value
    )


def load_entity(
    entity: str,
    frame: pd.DataFrame,
    m: Mapping,
    api: CustomerXApi | None,
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    dry_run: bool,
    log: logging.Logger | logging.LoggerAdapter,
    sync_id: str = "",
) -> LoadReport:
    schema = m.name
    loadstate.ensure(con, schema)
    known = loadstate.read(con, schema, entity)
    refused = loadstate.refusals(con, schema, entity, sync_id) if sync_id else {}
    # a contact, contract or timeline entry is sent once its client is in CustomerX
    landed = None if entity == "clients" or dry_run else loadstate.sent_ids(con, schema, "clients")
    report = LoadReport()
    ledger: list[tuple[Any, ...]] = []
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)

    def note(ext: str, outcome: str, status: int | None = None, detail: str | None = None) -> None:
        report.counts[outcome] += 1
        ledger.append((run_id, entity, ext, outcome, status, detail, now))

    rows = [{k: _clean(v) for k, v in r.items()} for r in frame.to_dict("records")]
    planned = []
    emails_seen: dict[str, str] = {}
    for row in rows:
        body = BUILDERS[entity](row, m)
        ext = row["external_id"]
        if entity == "contacts":
            if not body.get("email"):
                note(
                    ext, "rejected", None, "CustomerX requires an e-mail for a contact; this contact has none"
                )
                continue
            first = emails_seen.setdefault(body["email"], ext)
            if first != ext:
                note(
                    ext,
                    "rejected",
                    None,
                    f"e-mail {body['email']} already belongs to contact {first} "
                    "(CustomerX e-mails are unique in the account)",
                )
                continue
        planned.append((row, ext, body, content_hash(body)))

    ops = OPERATIONS.get(entity)
    index: CustomerXIndex | None = None
    failures = 0
    for row, ext, body, digest in planned:
        mine = known.get(ext)
        if (
            mine is not None
            and mine.state == "sent"
            and (mine.content_hash == digest or entity == "timeline")
        ):
            note(ext, "unchanged")
            continue
        if landed is not None and row.get("client_external_id") not in landed:
            note(
                ext,
                "waiting_for_client",
                None,
                f"client {row.get('client_external_id')} is not in CustomerX yet (see its ledger rows); "
                "this record is sent once it lands",
            )
            continue
        earlier = refused.get(ext)
        if earlier is not None:
            note(
                ext,
                "rejected",
                None,
                f"refused earlier in this sync (HTTP {earlier[1]}): not sent again until the next sync",
            )
            continue
        if dry_run:
            outcome = "would_update" if mine is not None and mine.state == "sent" else "would_create"
            report.counts[outcome] += 1
            if len(report.diffs) < 20:
                report.diffs.append(
                    {
                        "external_id": ext,
                        "action": outcome,
                        "changes": field_diff(mine.body if mine else None, body),
                    }
                )
            continue
        try:
            if entity == "timeline":
                outcome, _ = _post_once(api, con, m, ext, body, digest, mine, run_id, report.stats)
                detail = None
            else:
                if index is None and (mine is None or mine.state != "sent"):
                    rows = list(api.list_all(ops[0], stats=report.stats))
                    index = CustomerXIndex(rows, ops[3], loadstate.owners(con, schema, entity))
                outcome, detail = _upsert(
                    api, con, m, entity, row, ext, body, digest, mine, index, run_id, report.stats
                )
            note(ext, outcome, None, detail)
            failures = 0
        except CustomerXRejected as exc:
            note(ext, "rejected", exc.status, exc.body[:500])
            if sync_id:
                loadstate.remember_refusal(con, schema, entity, ext, digest, sync_id, exc.status)
            if len(report.refusals) < 20:
                report.refusals.append({"external_id": ext, "status": exc.status, "body": exc.body[:200]})
        except CustomerXUnavailableError as exc:
            note(ext, "failed", None, str(exc))
            failures += 1
            if failures >= MAX_CONSECUTIVE_FAILURES:
                loadstate.append_ledger(con, schema, ledger)
                raise
    loadstate.append_ledger(con, schema, ledger)
    if report.counts["rejected"] or report.counts["failed"]:
        log.warning(
            f"{entity}: {report.counts['rejected']} rejected, {report.counts['failed']} failed; "
            f"see {schema}.ledger (run_id = '{run_id}')"
        )
    return report


def _upsert(
    api: CustomerXApi,
    con: duckdb.DuckDBPyConnection,
    m: Mapping,
    entity: str,
    row: dict[str, Any],
    ext: str,
    body: dict[str, Any],
    digest: str,
    mine: loadstate.Known | None,
    index: CustomerXIndex | None,
    run_id: str,
    stats: CallStats,
) -> tuple[str, str | None]:
    """Create, update or adopt one record; returns the outcome and a detail for the ledger."""
    _, create_op, update_op, ext_key = OPERATIONS[entity]
    if mine is not None and mine.state == "sent":
        sent, moved = _without_client_move(entity, body, (mine.body or {}).get("external_id_client"))
        api.call(update_op, external_id=ext, body=sent, stats=stats)
        loadstate.record(con, m.name, entity, ext, mine.customerx_id, digest, body, "sent", run_id)
        return "updated", moved
    existing, passed_over = (
        index.match(ext, _identity_of(row), m.identifiers, _aliases(row))
        if index is not None
        else (None, None)
    )
    if existing is None:
        loadstate.record(con, m.name, entity, ext, None, None, None, "pending", run_id)
        try:
            result, _ = api.call(create_op, body=body, stats=stats)
        except CustomerXRejected as exc:
            if exc.status != 422 or "already" not in exc.body:
                raise
            # Created by a call whose answer was lost: adopt it instead of creating it twice.
            existing = next(
                iter(api.list_all(OPERATIONS[entity][0], params={ext_key: ext}, stats=stats)), None
            )
            if existing is None:
                raise
        else:
            cx_id = (result or {}).get("id")
            loadstate.record(con, m.name, entity, ext, cx_id, digest, body, "sent", run_id)
            if index is not None:
                index.claim(cx_id, ext)
            return "created", passed_over and f"{passed_over}; created a new one"
    # Adopt: the record already exists in CustomerX (ours from a killed run, or made by someone
    # else). It is addressed by what it has: its external id, else its numeric id; the body
    # carries our external id, so after this one write it is found by ours.
    current_ext = existing.get(ext_key)
    held_by = existing.get("external_id_client") or (existing.get("client") or {}).get("external_id_client")
    sent, moved = _without_client_move(entity, body, held_by)
    if current_ext:
        api.call(update_op, external_id=str(current_ext), body=sent, stats=stats)
    else:
        _update_by_id(api, entity, int(existing["id"]), sent, index, stats)
    loadstate.record(con, m.name, entity, ext, existing.get("id"), digest, body, "sent", run_id)
    if existing.get("id") is not None:
        loadstate.hand_over(con, m.name, entity, int(existing["id"]), ext)
    if index is not None:
        index.claim(existing.get("id"), ext)
    return "adopted", "; ".join(x for x in (f"adopted CustomerX record {existing.get('id')}", moved) if x)


def _update_by_id(
    api: CustomerXApi,
    entity: str,
    customerx_id: int,
    body: dict[str, Any],
    index: CustomerXIndex | None,
    stats: CallStats,
) -> None:
    """Write to a record that has no external id, by its numeric id.

    How CustomerX takes a numeric id on an update is inferred (customerx-api.md §7: S2 sends
    `PUT /contacts/?id=N`, and says path ids work too). `?id=N` is tried first; if the server does
    not know that form (400/404/405), the path form `PUT /<resource>/N` is used, but only when no
    record carries "N" as its external id, since the path form also names external ids.
    """
    try:
        api.call(UPDATE_BY_ID[entity], external_id=str(customerx_id), body=body, stats=stats)
    except CustomerXRejected as exc:
        ambiguous = index is None or str(customerx_id) in index.by_ext
        if exc.status not in (400, 404, 405) or ambiguous:
            raise
        api.call(UPDATE_BY_PATH_ID[entity], external_id=str(customerx_id), body=body, stats=stats)


def _without_client_move(
    entity: str, body: dict[str, Any], held_by: str | None
) -> tuple[dict[str, Any], str | None]:
    """A contact's client cannot be changed once set (customerx-api.md §8.2, C [S2]): when the
    person moved to another company in Ploomes, the update leaves the client out and says so."""
    if entity != "contacts" or not held_by or str(held_by) == str(body.get("external_id_client")):
        return body, None
    kept = {k: v for k, v in body.items() if k != "external_id_client"}
    return kept, (
        f"client changed in Ploomes from {held_by} to {body.get('external_id_client')}; CustomerX does not "
        f"move a contact between clients, so it stays on {held_by}"
    )


def _aliases(row: dict[str, Any]) -> list[str]:
    """External ids of the records merged into this one (staging's `aliases`)."""
    return [a for a in str(row.get("aliases") or "").split(",") if a]


def _identity_of(row: dict[str, Any]) -> dict[str, Any]:
    """Our staged record's normalized identifiers, as the identity rule compares them."""
    return {c: row.get(c) for c in IDENTIFIER_COLUMNS.values()}


def _post_once(
    api: CustomerXApi,
    con: duckdb.DuckDBPyConnection,
    m: Mapping,
    ext: str,
    body: dict[str, Any],
    digest: str,
    mine: loadstate.Known | None,
    run_id: str,
    stats: CallStats,
) -> tuple[str, int | None]:
    """A timeline entry is posted once, ever; one left `pending` by a killed run is looked up first."""
    if mine is not None and mine.state == "pending":
        # I: GET /timelines filtered by client (customerx-api.md §8.4 lists it as inferred).
        for entry in api.list_all(
            "list_timelines", params={"external_id_client": body["external_id_client"]}, stats=stats
        ):
            if entry.get("title") == body["title"] and entry.get("created_at") == body["created_at"]:
                loadstate.record(con, m.name, "timeline", ext, entry.get("id"), digest, body, "sent", run_id)
                return "adopted", entry.get("id")
    loadstate.record(con, m.name, "timeline", ext, None, None, None, "pending", run_id)
    result, _ = api.call("create_timeline", body=body, stats=stats)
    cx_id = (result or {}).get("id")
    loadstate.record(con, m.name, "timeline", ext, cx_id, digest, body, "sent", run_id)
    return "created", cx_id
