"""Make CustomerX hold what a staging table says, at the smallest number of calls.

Per record: unchanged since last sent (same content hash) -> no call; known to CustomerX ->
one PUT; new -> adopt an existing CustomerX record that matches by our external id or the
mapping's identifiers (one PUT), else one POST. Timeline entries are posted once, ever.
Records CustomerX is known to refuse (a contact without e-mail, a second contact with the same
e-mail) are rejected before any call. Each outcome goes to the ledger; a refused or failed record
is not marked sent, so the next sync tries it again.
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
from ploomes_cx.mapping import Mapping
from ploomes_cx.payloads import BUILDERS, content_hash, field_diff

OPERATIONS = {
    "clients": ("list_clients", "create_client", "update_client", "external_id_client"),
    "contacts": ("list_contacts", "create_contact", "update_contact", "external_id_contact"),
    "contracts": ("list_contracts", "create_contract", "update_contract", "external_id_contract"),
}
MAX_CONSECUTIVE_FAILURES = 3


@dataclass
class LoadReport:
    counts: Counter = field(default_factory=Counter)
    stats: CallStats = field(default_factory=CallStats)
    refusals: list[dict[str, Any]] = field(default_factory=list)
    diffs: list[dict[str, Any]] = field(default_factory=list)


class Index:
    """Existing CustomerX records by external id and by identifier, read once per load when needed."""

    def __init__(self, rows: list[dict[str, Any]], ext_key: str) -> None:
        self.by_ext = {str(r[ext_key]): r for r in rows if r.get(ext_key)}
        self.by_doc = {
            "".join(c for c in str(r.get("cnpj_cpf") or r.get("document") or "") if c.isalnum()): r
            for r in rows
            if r.get("cnpj_cpf") or r.get("document")
        }
        self.by_email = {str(r["email"]).strip().lower(): r for r in rows if r.get("email")}

    def match(
        self, body: dict[str, Any], ext_key: str, row: dict[str, Any], identifiers: list[str]
    ) -> dict | None:
        found = self.by_ext.get(body[ext_key])
        if found:
            return found
        for ident in identifiers:
            if ident == "cnpj_cpf" and row.get("document"):
                found = self.by_doc.get(str(row["document"]))
            elif ident == "external_code" and row.get("external_code"):
                found = self.by_ext.get(str(row["external_code"]))  # CustomerX "Código" is its external id
            elif ident == "email" and row.get("email"):
                found = self.by_email.get(str(row["email"]))
            if found:
                return found
        return None


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
) -> LoadReport:
    schema = m.name
    loadstate.ensure(con, schema)
    known = loadstate.read(con, schema, entity)
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
    index: Index | None = None
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
            else:
                if index is None and (mine is None or mine.state != "sent"):
                    index = Index(list(api.list_all(ops[0], stats=report.stats)), ops[3])
                outcome, _ = _upsert(
                    api, con, m, entity, row, ext, body, digest, mine, index, run_id, report.stats
                )
            note(ext, outcome)
            failures = 0
        except CustomerXRejected as exc:
            note(ext, "rejected", exc.status, exc.body[:500])
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
    index: Index | None,
    run_id: str,
    stats: CallStats,
) -> tuple[str, int | None]:
    _, create_op, update_op, ext_key = OPERATIONS[entity]
    if mine is not None and mine.state == "sent":
        result, _ = api.call(update_op, external_id=ext, body=body, stats=stats)
        loadstate.record(con, m.name, entity, ext, mine.customerx_id, digest, body, "sent", run_id)
        return "updated", mine.customerx_id
    existing = index.match(body, ext_key, row, m.identifiers) if index is not None else None
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
            return "created", cx_id
    # Adopt: the record already exists in CustomerX (ours from a killed run, or made by someone else).
    current_ext = existing.get(ext_key)
    target = str(current_ext) if current_ext else str(existing["id"])
    api.call(update_op, external_id=target, body=body, stats=stats)
    loadstate.record(con, m.name, entity, ext, existing.get("id"), digest, body, "sent", run_id)
    return "adopted", existing.get("id")


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
