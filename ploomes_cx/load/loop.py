"""Make CustomerX hold what a staging table says, at the smallest number of calls.

Per record: unchanged since last sent (same content hash) -> no call; known to CustomerX ->
one PUT; new -> adopt an existing CustomerX record the identity rule says is the same
(`identity.CustomerXIndex`: by our external id, a merged alias's, or the mapping's identifiers;
never across two valid documents, never one another record of ours holds; its candidates read
by a listing or by filtered lookups, whichever costs less, `load/adoption.py`), addressed by its
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

from ploomes_cx.customerx.bodies import BUILDERS, cancel_body, client_of, without_client_move
from ploomes_cx.customerx.client import (
    CallStats,
    CustomerXApi,
    CustomerXInDoubt,
    CustomerXRejected,
    CustomerXUnavailableError,
)
from ploomes_cx.customerx.endpoints import RESOURCES
from ploomes_cx.customerx.own_id import OwnIdLookup
from ploomes_cx.load import contract_status, ledger, merges, timeline
from ploomes_cx.load.adoption import Adoption
from ploomes_cx.load.hashes import content_hash, field_diff
from ploomes_cx.load.progress import LoadProgress
from ploomes_cx.mapping import Mapping

MAX_CONSECUTIVE_FAILURES = 3
MAX_CREATES = 3  # POSTs of one record whose answers were lost, each after a read found nothing
SAMPLES = 20  # refusals and dry-run diffs kept for the asset's metadata


@dataclass
class LoadReport:
    counts: Counter = field(default_factory=Counter)
    stats: CallStats = field(default_factory=CallStats)
    refusals: list[dict[str, Any]] = field(default_factory=list)
    diffs: list[dict[str, Any]] = field(default_factory=list)
    adoption: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadOptions:
    dry_run: bool = False
    # one id for every window of a `sync` command: a refused record is sent once per sync
    sync_id: str = ""


@dataclass
class Planned:
    row: dict[str, Any]
    ext: str
    body: dict[str, Any]
    digest: str


def _clean(value: Any) -> Any:
    return (
        None if value is None or (isinstance(value, float) and value != value) or value is pd.NaT else value
    )


@dataclass
class EntityLoad:
    """One entity's load in one run: the state each per-record step shares."""

    m: Mapping
    entity: str
    api: CustomerXApi | None
    con: duckdb.DuckDBPyConnection
    run_id: str
    options: LoadOptions = field(default_factory=LoadOptions)
    report: LoadReport = field(default_factory=LoadReport)
    adoption: Adoption | None = None
    # contracts only: those cancelled by us or kept after their deal left won (`ledger.contract_status`)
    statuses: dict[str, str] = field(default_factory=dict)
    # children only: merged-away client -> its survivor, both held by CustomerX (load/merges.py)
    merged: dict[str, str] = field(default_factory=dict)
    _ledger_rows: list[tuple[Any, ...]] = field(default_factory=list)
    _timeline_lookup: timeline.TimelineLookup | None = None
    _own_ids: OwnIdLookup | None = None
    crosswalk: ledger.Crosswalk = field(init=False)
    _now: dt.datetime = field(default_factory=ledger.now)

    def __post_init__(self) -> None:
        self.crosswalk = ledger.Crosswalk(self.con, self.schema, self.entity, self.run_id)

    @property
    def schema(self) -> str:
        return self.m.name

    def note(self, ext: str, outcome: str, status: int | None = None, detail: str | None = None) -> None:
        self.report.counts[outcome] += 1
        self._ledger_rows.append((self.run_id, self.entity, ext, outcome, status, detail, self._now))

    def reject(self, ext: str, why: str) -> None:
        """A record refused without a call: CustomerX would refuse it, or did earlier in this sync."""
        self.note(ext, "rejected", None, why)

    def remember(self, ext: str, cx_id: Any, digest: str | None, body: dict | None, state: str) -> None:
        self.crosswalk.remember(ext, cx_id, digest, body, state)

    def run(self, frame: pd.DataFrame, log: logging.Logger | logging.LoggerAdapter) -> LoadReport:
        ledger.ensure(self.con, self.schema)
        try:
            planned = self._plan(frame)
            progress = LoadProgress(len(planned), self.m.customerx.requests_per_minute, log)
            self._send_all(planned, progress)
        finally:
            self.crosswalk.flush()
            ledger.append_ledger(self.con, self.schema, self._ledger_rows)
            if self.adoption is not None:
                self.report.adoption = self.adoption.metadata()
        rejected, failed = self.report.counts["rejected"], self.report.counts["failed"]
        if rejected or failed:
            where = f"see {self.schema}.ledger (run_id = '{self.run_id}')"
            log.warning(f"{self.entity}: {rejected} rejected, {failed} failed; {where}")
        return self.report

    def _plan(self, frame: pd.DataFrame) -> list[Planned]:
        """Bodies to send; contacts CustomerX would refuse (no e-mail, an e-mail already used) are
        rejected here without a call (customerx-api.md §8.2)."""
        planned = []
        emails_seen: dict[str, str] = {}
        for raw in frame.to_dict("records"):
            row = {k: _clean(v) for k, v in raw.items()}
            build = cancel_body if row.get("status") == "left_won" else BUILDERS[self.entity]
            body, ext = build(row, self.m), row["external_id"]
            if self.entity == "contacts":
                if not body.get("email"):
                    self.reject(ext, "CustomerX requires an e-mail for a contact; this contact has none")
                    continue
                first = emails_seen.setdefault(body["email"], ext)
                if first != ext:
                    unique = "(CustomerX e-mails are unique in the account)"
                    self.reject(ext, f"e-mail {body['email']} already belongs to contact {first} {unique}")
                    continue
            planned.append(Planned(row, ext, body, content_hash(body)))
        return planned

    def _send_all(self, planned: list[Planned], progress: LoadProgress | None = None) -> None:
        known = ledger.read(self.con, self.schema, self.entity)
        if self.entity == "contracts":
            self.statuses = ledger.contract_statuses(self.con, self.schema)
        if self.entity != "clients":
            self.merged = merges.merged_away(self.con, self.schema)
        sync_id = self.options.sync_id
        refused = ledger.refusals(self.con, self.schema, self.entity, sync_id) if sync_id else {}
        # a contact, contract or timeline entry is sent once its client is in CustomerX
        landed = (
            None
            if self.entity == "clients" or self.options.dry_run
            else ledger.sent_ids(self.con, self.schema, "clients")
        )
        if not self.options.dry_run and self.entity != "timeline":
            self.adoption = Adoption(self.m, self.entity, self.api, self.con, sync_id, self.report.stats)
            new = [
                (item.ext, item.row)
                for item in planned
                if (known.get(item.ext) is None or known[item.ext].state != "sent")
                and item.row.get("status") != "left_won"
                and (landed is None or item.row.get("client_external_id") in landed)
                and item.ext not in refused
            ]
            self.adoption.choose(new, known)
        failures = 0
        for done, item in enumerate(planned, 1):
            if progress is not None and not self.options.dry_run:
                progress.tick(done - 1, self.report.stats.requests)
            mine = known.get(item.ext)
            if not self._moving(item, mine) and self._skipped(item, mine, landed, refused):
                continue
            if self.options.dry_run:
                self._dry_run(item, mine)
                continue
            error = self._send(item, mine)
            failures = 0 if error is None else failures + 1
            if error is not None and failures >= MAX_CONSECUTIVE_FAILURES:
                raise error  # CustomerX is down: the rest would fail the same way

    def _skipped(
        self,
        item: Planned,
        mine: ledger.Known | None,
        landed: set[str] | None,
        refused: dict[str, tuple[str, int]],
    ) -> bool:
        """Records that cost no call: unchanged, waiting for their client, or refused in this sync."""
        leaving, status = item.row.get("status") == "left_won", self.statuses.get(item.ext)
        if not leaving and status == "left_won":  # won again: the contract kept active all along
            ledger.set_contract_status(self.con, self.schema, item.ext, None, self.run_id)
            self.statuses.pop(item.ext)
            status = None
        sent = mine is not None and mine.state == "sent"
        same = sent and (mine.content_hash == item.digest or self.entity == "timeline")
        if (leaving and (status is not None or not sent)) or (not leaving and status is None and same):
            self.note(item.ext, "unchanged")
            return True
        client = item.row.get("client_external_id")
        if landed is not None and client not in landed:
            self.note(
                item.ext,
                "waiting_for_client",
                None,
                f"client {client} is not in CustomerX yet (see its ledger rows); this record is sent once it lands",
            )
            return True
        earlier = refused.get(item.ext)
        if earlier is not None:
            again = "not sent again until the next sync"
            self.reject(item.ext, f"refused earlier in this sync (HTTP {earlier[1]}): {again}")
            return True
        return False

    def _moving(self, item: Planned, mine: ledger.Known | None) -> bool:
        """Whether CustomerX holds this record under a client merged into the record's client."""
        held = (
            client_of(mine.body or {}) if self.merged and mine is not None and mine.state == "sent" else None
        )
        return held is not None and self.merged.get(held) == item.row.get("client_external_id")

    def _dry_run(self, item: Planned, mine: ledger.Known | None) -> None:
        outcome = "would_update" if mine is not None and mine.state == "sent" else "would_create"
        if item.row.get("status") == "left_won":
            outcome = f"would_{'keep' if self.m.contracts.on_leave_won == 'keep' else 'cancel'}"
        outcome = "would_move" if self._moving(item, mine) else outcome
        self.report.counts[outcome] += 1
        if len(self.report.diffs) < SAMPLES:
            changes = field_diff(mine.body if mine else None, item.body)
            self.report.diffs.append({"external_id": item.ext, "action": outcome, "changes": changes})

    def _send(self, item: Planned, mine: ledger.Known | None) -> CustomerXUnavailableError | None:
        """One record's calls; the error when CustomerX stayed unavailable after retries."""
        try:
            if self._moving(item, mine):
                assert mine is not None
                outcome, detail = merges.move(self, item, mine)
            elif self.entity == "timeline":
                outcome, detail = self.post_once(item, mine)
            elif item.row.get("status") == "left_won":
                outcome, detail = contract_status.leave_won(self, item)
            elif self.statuses.get(item.ext) == "cancelled":
                outcome, detail = contract_status.reactivate(self, item, mine)
            else:
                outcome, detail = self._upsert(item, mine)
            self.note(item.ext, outcome, None, detail)
        except CustomerXRejected as exc:
            self.note(item.ext, "rejected", exc.status, exc.body[:500])
            if self.options.sync_id:
                ledger.remember_refusal(
                    self.con,
                    self.schema,
                    self.entity,
                    item.ext,
                    item.digest,
                    self.options.sync_id,
                    exc.status,
                )
            if len(self.report.refusals) < SAMPLES:
                self.report.refusals.append(
                    {"external_id": item.ext, "status": exc.status, "body": exc.body[:200]}
                )
        except CustomerXUnavailableError as exc:
            self.note(item.ext, "failed", None, str(exc))
            return exc
        return None

    def call(self, operation: str, **kwargs: Any) -> Any:
        assert self.api is not None, "a load that writes needs a CustomerX client"
        return self.api.call(operation, stats=self.report.stats, **kwargs)

    def _upsert(self, item: Planned, mine: ledger.Known | None) -> tuple[str, str | None]:
        """Create, update or adopt one record; returns the outcome and a detail for the ledger."""
        ops = RESOURCES[self.entity]
        if mine is not None and mine.state == "sent":
            sent, held, moved = without_client_move(
                self.entity, item.body, (mine.body or {}).get("external_id_client")
            )
            self.call(ops.update, external_id=item.ext, body=sent)
            self.remember(item.ext, mine.customerx_id, item.digest, held, "sent")
            return "updated", moved
        assert self.adoption is not None
        existing, passed_over = self.adoption.match(item.ext, item.row)
        if existing is None:
            existing = self.create(item)
            if existing is None:
                return "created", passed_over and f"{passed_over}; created a new one"
        return self.adopt(item, existing)

    def create(self, item: Planned) -> dict[str, Any] | None:
        """POST a new record (crosswalk `pending` first); None once created, or the record a lost
        answer already created, to be adopted instead of created twice.

        Whether CustomerX refuses a second record with a taken external id is unknown
        (customerx-api.md §7), so a POST whose answer was lost is not sent again until a read by
        our external id says it did not land. A 409 or 422 is re-read the same way (its text is
        never read, §6; load/own_id.py bounds what that costs): found, it is adopted; not found,
        the refusal is the record's."""
        ops = RESOURCES[self.entity]
        self.remember(item.ext, None, None, None, "pending")
        for _ in range(MAX_CREATES):
            try:
                result, _ = self.call(ops.create, body=item.body, resend=False)
            except CustomerXInDoubt:
                found = self._held_with_our_id(item.ext)
                if found is not None:
                    return found
                continue
            except CustomerXRejected as exc:
                found = self._held_with_our_id(item.ext) if exc.status in (409, 422) else None
                if found is None:
                    raise
                return found
            cx_id = (result or {}).get("id")
            self.remember(item.ext, cx_id, item.digest, item.body, "sent")
            assert self.adoption is not None
            self.adoption.claim(cx_id, item.ext)
            return None
        raise CustomerXInDoubt(
            f"{self.entity} {item.ext}: CustomerX lost the answer to {MAX_CREATES} creates"
        )

    def _held_with_our_id(self, ext: str) -> dict[str, Any] | None:
        if self._own_ids is None:
            assert self.api is not None
            self._own_ids = OwnIdLookup(self.api, self.entity, self.report.stats)
        return self._own_ids.find(ext)

    def adopt(self, item: Planned, existing: dict[str, Any]) -> tuple[str, str | None]:
        """Take over a record CustomerX already has (ours from a killed run, or made by someone
        else), addressed by its external id, else its numeric id; the body carries our external
        id, so after this one write it is found by ours."""
        ops = RESOURCES[self.entity]
        current_ext = existing.get(ops.external_id_field)
        held_by = client_of(existing)
        sent, held, moved = without_client_move(self.entity, item.body, held_by)
        if current_ext:
            self.call(ops.update, external_id=str(current_ext), body=sent)
        else:
            self._update_by_id(int(existing["id"]), sent)
        cx_id = existing.get("id")
        self.remember(item.ext, cx_id, item.digest, held, "sent")
        if cx_id is not None:
            self.crosswalk.hand_over(int(cx_id), item.ext)
        assert self.adoption is not None
        self.adoption.claim(cx_id, item.ext)
        return "adopted", "; ".join(x for x in (f"adopted CustomerX record {cx_id}", moved) if x)

    def _update_by_id(self, customerx_id: int, body: dict[str, Any]) -> None:
        """Write to a record that has no external id, by its numeric id.

        How CustomerX takes a numeric id on an update is inferred (customerx-api.md §7: S2 sends
        `PUT /contacts/?id=N`, and says path ids work too). `?id=N` is tried first; if the server
        does not know that form (400/404/405), the path form `PUT /<resource>/N` is used, but only
        when no record carries "N" as its external id, since the path form also names external ids.
        """
        ops = RESOURCES[self.entity]
        try:
            self.call(ops.update_by_id, external_id=str(customerx_id), body=body)
        except CustomerXRejected as exc:
            ambiguous = self.adoption is None or self.adoption.carries_external_id(str(customerx_id))
            if exc.status not in (400, 404, 405) or ambiguous:
                raise
            self.call(ops.update_by_path_id, external_id=str(customerx_id), body=body)

    def post_once(self, item: Planned, mine: ledger.Known | None) -> tuple[str, str | None]:
        return timeline.post_once(self, item, mine)

    def timeline_lookup(self) -> timeline.TimelineLookup:
        """One lookup per load: what it learnt of the listing's shape serves every entry."""
        if self._timeline_lookup is None:
            self._timeline_lookup = timeline.TimelineLookup(self)
        return self._timeline_lookup
