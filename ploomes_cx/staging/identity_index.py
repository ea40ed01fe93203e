"""The identity index (docs/incremental-staging.md): every party's link values as the last staging
read them, kept in `<mapping>.staging_identity`, so a staging of what changed can find what a
changed organization or person reaches through the values it had *before* the change as well as
the ones it has now.

A link is any value two records share that makes their staged rows depend on each other: an
identifier of the mapping (organizations and persons are deduplicated apart, so each kind has
its own link), the e-mail of a party that feeds contacts (CustomerX keeps one contact per
e-mail, whatever the identifiers), and company membership when a person's client is its
company's (a person holds its company's Id, a company its own). One row per present value: (`ploomes_id`, `identifier`,
`value`), the shape `neighbourhood.neighbourhood_sql` searches.
"""

from __future__ import annotations

from collections.abc import Collection

import duckdb
import pandas as pd

from ploomes_cx.decisions import Decision
from ploomes_cx.identity import IDENTIFIER_COLUMNS
from ploomes_cx.mapping import Mapping
from ploomes_cx.plan import Plan
from ploomes_cx.ploomes.custom_fields import mapped_field_types
from ploomes_cx.staging.context import Context
from ploomes_cx.staging.neighbourhood import neighbourhood_sql
from ploomes_cx.staging.party import CONTACT_PARTY_SOURCES, read_parties
from ploomes_cx.staging.reach import reach_frame
from ploomes_cx.staging.rejects import Rejects

INDEX_TABLE = "staging_identity"
NEXT_TABLE = "staging_identity_next"  # the links the staging under way read


def _links(m: Mapping, entity: str) -> dict[str, str]:
    """Link name -> the party frame's column holding it, for `entity`'s frame."""
    links = {f"{entity}:{IDENTIFIER_COLUMNS[i]}": IDENTIFIER_COLUMNS[i] for i in m.identifiers}
    if entity in CONTACT_PARTY_SOURCES[m.contacts.source]:  # CustomerX's one contact per e-mail
        links["contact_email"] = "email"
    if m.clients.source != "persons":  # a person's client is its company's
        links["company"] = "ploomes_id" if entity == "organizations" else "company_id"
    return links


def write_links(
    con: duckdb.DuckDBPyConnection,
    table: str,
    m: Mapping,
    orgs: pd.DataFrame,
    persons: pd.DataFrame,
    temporary: bool = False,
) -> None:
    """The link rows of the parties a staging read (normalized, before deduplication) into
    `table`, made by DuckDB from the frames in place: one row per present value, the link's kind
    in `identifier`, never copied into the value (a million persons make millions of rows, which
    pandas took several times as long to build as frames first)."""
    kind = "temp table" if temporary else "table"
    con.execute(f"create or replace {kind} {table} (ploomes_id bigint, identifier varchar, value varchar)")
    for entity, frame in (("organizations", orgs), ("persons", persons)):
        links = _links(m, entity)
        if not len(frame) or not links:
            continue
        columns = sorted({"ploomes_id", *links.values()})
        con.register("_ploomes_cx_party", frame[columns])  # the columns alone, not copied
        try:
            selects = " union all ".join(
                f"select ploomes_id::bigint, '{link}', cast(try_cast({column} as bigint) as varchar) "
                f"from _ploomes_cx_party where {column} is not null"
                if link == "company"
                else f"select ploomes_id::bigint, '{link}', {column}::varchar "
                f"from _ploomes_cx_party where {column} is not null"
                for link, column in links.items()
            )
            con.execute(f"insert into {table} {selects}")
        finally:
            con.unregister("_ploomes_cx_party")


def write_next(con: duckdb.DuckDBPyConnection, m: Mapping, orgs: pd.DataFrame, persons: pd.DataFrame) -> None:
    """The links this staging read (`NEXT_TABLE`), written out, not held through the staging."""
    write_links(con, f"{m.name}.{NEXT_TABLE}", m, orgs, persons)


def replace(con: duckdb.DuckDBPyConnection, schema: str) -> None:
    """A full staging's links become the index."""
    con.execute(f"drop table if exists {schema}.{INDEX_TABLE}")
    con.execute(f"alter table {schema}.{NEXT_TABLE} rename to {INDEX_TABLE}")


def splice(con: duckdb.DuckDBPyConnection, schema: str, reached: set[int]) -> None:
    """A staging of what changed: the reached parties' rows replaced by the links it read."""
    con.execute(
        f"delete from {schema}.{INDEX_TABLE} where ploomes_id in (select unnest(?::bigint[]))",
        [sorted(int(i) for i in reached)],
    )
    con.execute(
        f"insert into {schema}.{INDEX_TABLE} select ploomes_id, identifier, value from {schema}.{NEXT_TABLE}"
    )
    con.execute(f"drop table {schema}.{NEXT_TABLE}")


def reach_parties(
    con: duckdb.DuckDBPyConnection,
    m: Mapping,
    changed: set[int],
    decisions: list[Decision],
    decided_before: Collection[int] = (),
) -> set[int]:
    """The organizations and persons linked to the `changed` ones by a value they had at the last
    staging (the index) or have now, and to every Id a decision names now or named at the last
    staging (few, and the rows about decisions are listed again whole: `party_splice.py`)."""
    con.register("_ploomes_cx_changed", reach_frame({"contacts": changed}))
    try:
        ctx = Context(con, m, Rejects("reach"), mapped_field_types(con, m), only="_ploomes_cx_changed")
        with pd.option_context("mode.copy_on_write", True):
            now = read_parties(ctx, Plan.of(m).extracts)
        write_links(con, "_ploomes_cx_now", m, now.orgs, now.persons, temporary=True)
    finally:
        con.unregister("_ploomes_cx_changed")
    decided = {i for d in decisions for i in d.ids} | set(decided_before)
    try:
        return reach(con, m.name, "_ploomes_cx_now", changed | decided)
    finally:
        con.execute("drop table if exists _ploomes_cx_now")


def reach(con: duckdb.DuckDBPyConnection, schema: str, now: str, seeds: set[int]) -> set[int]:
    """The parties linked to `seeds` through the values the last staging read (the index) or the
    ones they have now (`now`: a table of the changed parties' links): what a change can move in
    or out of a cluster, a client's contacts or an e-mail's holder."""
    graph = (
        f"(select ploomes_id, identifier, value from {schema}.{INDEX_TABLE} "
        f"union all select ploomes_id, identifier, value from {now})"
    )
    return neighbourhood_sql(con, graph, seeds)
