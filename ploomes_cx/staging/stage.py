"""One staging: every record, or only what the changed records reach (`incremental.py`, spliced
by `party_splice.py` when organizations or persons changed), and the row in `staging_log` that
lets the next staging know what changed since (`log.py`)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import duckdb
import pandas as pd

from ploomes_cx.decisions import Decision, load_decisions
from ploomes_cx.mapping import Mapping
from ploomes_cx.plan import Plan
from ploomes_cx.ploomes.custom_fields import mapped_field_types
from ploomes_cx.runtime.duckdb_io import release_buffers
from ploomes_cx.staging import identity_index, incremental, log
from ploomes_cx.staging.build import DUCKDB_MEMORY, Staged, build_staging, staging_mode
from ploomes_cx.staging.party_splice import party_counts, splice_parties
from ploomes_cx.staging.reach import Reach, children, reach_frame, refresh_seen
from ploomes_cx.staging.validate import apply_contracts

# stage every record at every run, whatever changed (an operator's switch; the run config
# `full_restage` asks the same of one run)
FULL_RESTAGE_ENV = "PLOOMES_CX_FULL_RESTAGE"


@dataclass
class Staging:
    tables: dict[str, pd.DataFrame]  # validated, by output name
    staged: Staged  # its counts are the whole account's
    mark: log.StagingMark
    reached: Reach | None = None  # the records staged again, by Id space; None: every record
    decided: frozenset[int] = frozenset()  # the Ids the decisions named (`log.record_decided`)

    @property
    def summary(self) -> str:
        return f"{self.mark.mode}: {self.mark.reason}"


def stage(con: duckdb.DuckDBPyConnection, m: Mapping, run_id: str, full_restage: bool = False) -> Staging:
    """Stage mapping `m`, incrementally when `incremental.why_full` finds no reason not to."""
    entities = list(Plan.of(m).staged)
    last = log.last(con, m.name)
    decisions = load_decisions(m)  # read once: the digest, the reach and the re-stage agree
    mark = log.StagingMark(
        run_id,
        log.utc_now(),
        "started",
        "",
        log.mapping_digest(m, mapped_field_types(con, m)),
        log.decisions_digest(decisions),
        {},
    )
    # before the digests are replaced: a staging stopped from here on is followed by a full one
    log.record(con, m.name, mark)
    # the digest pass (every payload, for rows written before raw rows carried their digest) runs
    # within staging's memory limit (without it DuckDB's cache took a million persons' peak to
    # 1.8 GiB), its cached pages given back after
    con.execute(f"set memory_limit = '{DUCKDB_MEMORY}'")
    seeds, gone_changed = refresh_seen(con, m)
    release_buffers(con, DUCKDB_MEMORY)
    reason = _asked_full(full_restage)
    if reason is None and last is not None and last.mode == "started":
        reason = "the last staging stopped before its tables were written"
    if reason is None and last is not None and seeds is None:
        reason = "no digest of the records the last staging read"
    named = frozenset(i for d in decisions for i in d.ids)
    before = log.decided(con, m.name, last.decisions_digest) if last is not None else None
    if reason is None:
        reason = incremental.why_full(con, m, last, mark, seeds or {}, gone_changed, before is not None)
    if reason is None and last is not None:
        # decisions changed: what the Ids they name now or named then reach is staged again
        redecided = before if last.decisions_digest != mark.decisions_digest else None
        done = _incremental(con, m, run_id, entities, (last, mark), seeds or {}, (decisions, redecided))
        if isinstance(done, Staging):
            done.decided = named
            return done
        reason = done
    staged = build_staging(con, m, run_id, decisions=decisions)
    with staging_mode():
        tables = apply_contracts(staged, entities, run_id)
    identity_index.replace(con, m.name)
    return Staging(tables, staged, _done(mark, "full", reason or "", staged.counts), decided=named)


def finish(con: duckdb.DuckDBPyConnection, m: Mapping, staging: Staging) -> None:
    """Once every table is written: the next staging reads changes from this one's start. The
    decided Ids go first: a staging stopped between the two is followed by a full one."""
    log.record_decided(con, m.name, staging.mark.decisions_digest, staging.decided)
    log.record(con, m.name, staging.mark)


def _incremental(
    con: duckdb.DuckDBPyConnection,
    m: Mapping,
    run_id: str,
    entities: list[str],
    marks: tuple[log.StagingMark, log.StagingMark],
    seeds: Reach,
    decided: tuple[list[Decision], set[int] | None],
) -> Staging | str:
    """Stage what the changed records reach, and splice it into the tables the last staging left
    (`marks`: the last staging's and this one's; `decided`: the decisions, and the Ids they named
    at the last staging when they changed since); or say why every record must be staged after all."""
    last, mark = marks
    decisions, redecided = decided
    changed = seeds.get("contacts", set())
    parties = (
        identity_index.reach_parties(con, m, changed, decisions, redecided or ())
        if changed or redecided is not None
        else set()
    )
    reach = children(con, m, parties, seeds)  # with the timeline entries of a changed deal
    before = incremental.previous_tables(con, m)
    con.register("_ploomes_cx_reach", reach_frame(reach))
    con.register("_ploomes_cx_stored", before["clients"])
    try:
        part = build_staging(
            con, m, run_id, only="_ploomes_cx_reach", stored="_ploomes_cx_stored", decisions=decisions
        )
    finally:
        con.unregister("_ploomes_cx_reach")
        con.unregister("_ploomes_cx_stored")
    with staging_mode():
        fresh = apply_contracts(part, entities, run_id)  # only the re-staged rows need checking
        if fresh["rejected"]["entity"].astype(str).str.startswith("stg_").any():
            # the look-alikes and counts of a full staging are made before its contracts refuse rows
            return "a table contract refused a re-staged row: every row is staged and checked again"
        if parties:
            tables = splice_parties(m, before, fresh, reach, decisions)
        else:
            tables = incremental.splice_children(before, fresh, reach)
    counts = incremental.spliced_counts(last.counts, before, part.counts, reach)
    if parties:
        counts = party_counts(con, m, counts, tables)
        identity_index.splice(con, m.name, reach["contacts"])
    part.counts = counts
    why = _why(seeds, reach, changed, parties)
    if redecided is not None:
        why = (
            f"the decisions changed: {len(parties)} organizations or persons their Ids before and now "
            f"reach re-staged; {why}"
        )
    return Staging(tables, part, _done(mark, "incremental", why, counts), reach)


def _why(seeds: Reach, reach: Reach, changed: set[int], parties: set[int]) -> str:
    records, staged = (sum(len(ids) for ids in r.values()) for r in (seeds, reach))
    if not changed:
        return (
            f"{records} changed record(s), all deals, notes, tasks or attachments: "
            f"{staged} re-staged alone, every other row kept"
        )
    shown = ", ".join(map(str, sorted(changed)[:3])) + (", …" if len(changed) > 3 else "")
    return (
        f"{records} changed record(s), {len(changed)} of them organizations or persons ({shown}): "
        f"{staged} re-staged ({len(parties)} organizations or persons they reach), every other row kept"
    )


def _asked_full(full_restage: bool) -> str | None:
    if full_restage:
        return "a full re-stage was asked for (run config full_restage)"
    if os.environ.get(FULL_RESTAGE_ENV, "").strip().lower() in ("1", "true", "yes"):
        return f"a full re-stage is asked for every run (${FULL_RESTAGE_ENV})"
    return None


def _done(
    mark: log.StagingMark, mode: str, reason: str, counts: dict[str, dict[str, int]]
) -> log.StagingMark:
    return log.StagingMark(
        mark.run_id, mark.started_at, mode, reason, mark.mapping_digest, mark.decisions_digest, counts
    )
