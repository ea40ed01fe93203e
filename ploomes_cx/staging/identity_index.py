"""The identity index (docs/incremental-staging.md): every party's link values as the last staging
read them, kept in `<mapping>.staging_identity`, so a staging of what changed can find what a
changed organization or person reaches through the values it had *before* the change as well as
the ones it has now.

A link is any value two records share that makes their staged rows depend on each other: an
identifier of the mapping (organizations and persons are deduplicated apart, so each kind has
its own link), the e-mail of a party that feeds contacts (CustomerX keeps one contact per
e-mail, whatever the identifiers), and company membership when a person's client is its company's (a person holds its
company's Id, a company its own). One row per present value: (`ploomes_id`, `identifier`,
`value`), the shape `neighbourhood.neighbourhood_sql` searches.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

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
INDEX_COLUMNS = ["ploomes_id", "identifier", "value"]


def party_links(m: Mapping, orgs: pd.DataFrame, persons: pd.DataFrame) -> Iterator[pd.DataFrame]:
    """The link rows of the parties read by a staging (normalized, before deduplication), one
    frame per kind of link: a million persons' five million rows are never one frame.

    The link's kind goes in `identifier`, never into the value: a million values are not copied
    to be prefixed."""
    via_company = m.clients.source != "persons"
    contacts_from = CONTACT_PARTY_SOURCES[m.contacts.source]  # CustomerX's one contact per e-mail
    for entity, frame in (("organizations", orgs), ("persons", persons)):
        columns = {f"{entity}:{IDENTIFIER_COLUMNS[i]}": IDENTIFIER_COLUMNS[i] for i in m.identifiers}
        if entity in contacts_from:
            columns["contact_email"] = "email"
        for link, column in columns.items():
            yield _rows(frame["ploomes_id"], frame[column], link)
        if via_company:
            company = frame["ploomes_id"] if entity == "organizations" else frame["company_id"]
            yield _rows(frame["ploomes_id"], company.astype("Int64").astype("string"), "company")


def _rows(ids: pd.Series, values: pd.Series, link: str) -> pd.DataFrame:
    present = values.notna().to_numpy()
    return pd.DataFrame(
        {
            "ploomes_id": ids[present].astype("int64").to_numpy(),
            "identifier": link,
            "value": values[present].astype(str).astype(object).to_numpy(),
        }
    )


def write_next(con: duckdb.DuckDBPyConnection, schema: str, links: Iterable[pd.DataFrame]) -> None:
    """The links a staging read, kept in DuckDB as it reads them (`NEXT_TABLE`), one kind of
    link at a time, instead of held through the staging."""
    con.execute(
        f"create or replace table {schema}.{NEXT_TABLE} "
        "(ploomes_id bigint, identifier varchar, value varchar)"
    )
    for part in links:
        con.register("_ploomes_cx_links", part)
        try:
            con.execute(
                f"insert into {schema}.{NEXT_TABLE} select ploomes_id, identifier, value from _ploomes_cx_links"
            )
        finally:
            con.unregister("_ploomes_cx_links")


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
    con: duckdb.DuckDBPyConnection, m: Mapping, changed: set[int], decisions: list[Decision]
) -> set[int]:
    """The organizations and persons linked to the `changed` ones by a value they had at the last
    staging (the index) or have now, and to every Id a decision names (few, and the rows about
    decisions are listed again whole: `party_splice.py`)."""
    con.register("_ploomes_cx_changed", reach_frame({"contacts": changed}))
    try:
        ctx = Context(con, m, Rejects("reach"), mapped_field_types(con, m), only="_ploomes_cx_changed")
        with pd.option_context("mode.copy_on_write", True):
            now = read_parties(ctx, Plan.of(m).extracts)
        parts = [p for p in party_links(m, now.orgs, now.persons) if len(p)]
        links = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=INDEX_COLUMNS)
    finally:
        con.unregister("_ploomes_cx_changed")
    decided = {i for d in decisions for i in d.ids}
    return reach(con, m.name, links, changed | decided)


def reach(con: duckdb.DuckDBPyConnection, schema: str, now: pd.DataFrame, seeds: set[int]) -> set[int]:
    """The parties linked to `seeds` through the values the last staging read (the index) or the
    ones they have now (`now`: the changed parties' links): what a change can move in or out of a
    cluster, a client's contacts or an e-mail's holder."""
    con.register("_ploomes_cx_now", now[INDEX_COLUMNS])
    try:
        con.execute(
            "create or replace temp table _ploomes_cx_graph as "
            f"select ploomes_id, identifier, value from {schema}.{INDEX_TABLE} "
            "union all select ploomes_id, identifier, value from _ploomes_cx_now"
        )
    finally:
        con.unregister("_ploomes_cx_now")
    try:
        return neighbourhood_sql(con, "_ploomes_cx_graph", seeds)
    finally:
        con.execute("drop table if exists _ploomes_cx_graph")
