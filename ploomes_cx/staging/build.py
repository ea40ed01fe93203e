"""From raw Ploomes extracts to the staging tables the CustomerX load reads.

Set-shaped work (latest version per record, JSON field extraction) is DuckDB SQL over the raw
tables (`ploomes/payloads.py`); pandas appears at the edges, for the vectorized normalizers and
the clustering. Everything is recomputed over all windows, so deduplication is global and a
record's latest version (by change date) wins whichever window was materialized last.

Accounting, per source entity: every distinct Ploomes record extracted is either staged, merged
into a survivor, or rejected with a reason (`counts`); field-level problems (an invalid CPF, a
broken e-mail) clear the field, keep the record and are listed too, with outcome `field_cleared`.
The tables are built in dependency order: clients first, since every other row needs its client.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from ploomes_cx.decisions import Decision, load_decisions
from ploomes_cx.mapping import Mapping
from ploomes_cx.plan import Plan
from ploomes_cx.ploomes.custom_fields import mapped_field_types
from ploomes_cx.runtime.duckdb_io import release_buffers
from ploomes_cx.runtime.gc_pause import paused_gc
from ploomes_cx.staging.clients import stage_clients
from ploomes_cx.staging.contacts import stage_contacts
from ploomes_cx.staging.context import Context
from ploomes_cx.staging.contracts import stage_contracts
from ploomes_cx.staging.identity_index import write_next
from ploomes_cx.staging.party import read_parties
from ploomes_cx.staging.rejects import Rejects
from ploomes_cx.staging.survivors import decision_rows
from ploomes_cx.staging.tables import CLUSTER_COLUMNS, missing_parents
from ploomes_cx.staging.timeline import stage_timeline

DUCKDB_MEMORY = "256MB"


@dataclass
class Staged:
    clients: pd.DataFrame
    contacts: pd.DataFrame
    contracts: pd.DataFrame
    timeline: pd.DataFrame
    rejected: pd.DataFrame
    clusters: pd.DataFrame
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)  # the ones this run honoured


@contextlib.contextmanager
def staging_mode() -> Iterator[None]:
    """How staging computes, here and where its tables are validated (`assets.py`): with pandas
    copy-on-write (pandas 3's default), so a filtered or re-indexed frame of a million rows shares
    its columns until one is written instead of copying all of them each time; and with Python's
    cycle collector paused (`runtime/gc_pause.py`)."""
    with pd.option_context("mode.copy_on_write", True), paused_gc():
        yield


def build_staging(
    con: duckdb.DuckDBPyConnection,
    m: Mapping,
    run_id: str,
    only: str | None = None,
    stored: str | None = None,
    decisions: list[Decision] | None = None,
) -> Staged:
    """Compute every staging table of mapping `m` from its raw tables (schema `m.name`); with
    `only` (SQL of `space`, `ploomes_id`), from those records alone, finding the clients of the
    contacts outside them in `stored` (the `stg_clients` staged before)."""
    # Keep DuckDB's own buffers modest: the frames below need the memory more.
    con.execute(f"set memory_limit = '{DUCKDB_MEMORY}'")
    con.execute("set preserve_insertion_order = false")
    ctx = Context(
        con,
        m,
        Rejects(run_id),
        mapped_field_types(con, m),
        missing=missing_parents(con, m.name),
        decisions=load_decisions(m) if decisions is None else decisions,
        only=only,
        stored_clients=stored,
    )
    with staging_mode():
        return _build(ctx)


def _build(ctx: Context) -> Staged:
    con, m = ctx.con, ctx.m
    parties = read_parties(ctx, Plan.of(m).extracts)
    # each party's own link values, before deduplication gives a cluster's members its values:
    # the next staging's "before" (`identity_index.py`), written out, not held
    write_next(con, m, parties.orgs, parties.persons)
    release_buffers(con, DUCKDB_MEMORY)  # the payload pages the reads left cached, and the links'
    counts: dict[str, dict[str, int]] = {}
    clients, counts["clients"], client_of = stage_clients(ctx, parties)
    if m.contacts.source != "organizations":  # read for the last time: freed before the contacts
        parties.orgs = parties.orgs.iloc[0:0]
    contacts, counts["contacts"] = stage_contacts(ctx, parties, clients, client_of)
    # a million-row account: free the party frames before the rest (the resolver keeps its maps)
    parties.orgs = parties.persons = parties.orgs.iloc[0:0]
    contracts, counts["contracts"] = stage_contracts(ctx, parties, client_of)
    timeline, counts["timeline"] = stage_timeline(ctx, parties, client_of)
    ctx.clusters += decision_rows(ctx.decisions, ctx.decided_seen)
    return Staged(
        clients=clients,
        contacts=contacts,
        contracts=contracts,
        timeline=timeline,
        rejected=ctx.rejects.frame(),
        clusters=pd.DataFrame(ctx.clusters, columns=CLUSTER_COLUMNS).astype(
            {"score": "float64", "size": "int64", "survivor_id": "Int64"}
        ),
        counts=counts,
        decisions=ctx.decisions,
    )
