"""The duplicate report and the clients' and contacts' counts after a staging of what a changed
organization or person reached (docs/incremental-staging.md): the tables' rows are spliced by
record (`splice.py`); these two are not made of one record's rows.

- **Clusters.** A `merged` cluster lies inside one identifier component, so it is replaced by
  survivor. The rows about decisions (`unjoined`, `missing`, `different`) are the re-stage's
  whole: every Id a decision names is staged again with what a change reached (`stage.py`).
  Look-alike candidates link survivors far apart in the account (a name alike, a CNPJ root, a
  phone), so they are listed again from the spliced clients and contacts, by the same functions.
- **Counts.** Recounted from the spliced tables and the records read (`staging_seen`): extracted
  is every latest record of the entity, merged the members of the merged clusters beside their
  survivors, rejected what is left.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from ploomes_cx.decisions import Decision
from ploomes_cx.mapping import Mapping
from ploomes_cx.staging.clients import candidate_rows
from ploomes_cx.staging.contacts import namesake_rows
from ploomes_cx.staging.reach import SEEN_TABLE, Reach
from ploomes_cx.staging.schemas import MODELS, validate
from ploomes_cx.staging.splice import SPLICED, splice_clusters, splice_table
from ploomes_cx.staging.tables import CLUSTER_COLUMNS, counts

DECISION_KINDS = ("unjoined", "missing", "different")
# the entity a mapping's clients and contacts are staged as (`clients._client_party`,
# `contacts._contact_party`), for the sources a staging of what changed serves
CLIENT_ENTITY = {"organizations": "organizations", "persons": "persons"}
CONTACT_ENTITY = {"organizations": "organization_contacts", "persons": "persons"}


def splice_parties(
    m: Mapping,
    before: dict[str, pd.DataFrame],
    restaged: dict[str, pd.DataFrame],
    reach: Reach,
    decisions: list[Decision],
) -> dict[str, pd.DataFrame]:
    """The tables before, with every row made from a reached record replaced by its re-stage's,
    and the duplicate report as a full re-stage would list it."""
    out = dict(before)
    for table in SPLICED:
        if table in before:
            fresh = restaged[table].astype(before[table].dtypes.to_dict(), errors="ignore")
            out[table] = splice_table(table, before[table], fresh, reach)
    out["duplicate_clusters"] = _clusters(m, before["duplicate_clusters"], restaged, out, reach, decisions)
    return out


def _clusters(
    m: Mapping,
    before: pd.DataFrame,
    restaged: dict[str, pd.DataFrame],
    tables: dict[str, pd.DataFrame],
    reach: Reach,
    decisions: list[Decision],
) -> pd.DataFrame:
    fresh = restaged["duplicate_clusters"]
    merged = splice_clusters(before, fresh, reach)  # every other kind kept as it was, for now
    kept = merged[~merged["kind"].isin([*DECISION_KINDS, "candidate"])]
    decided = fresh[fresh["kind"].isin(DECISION_KINDS)]
    rows = candidate_rows(tables["clients"], CLIENT_ENTITY[m.clients.source], decisions)
    contact_entity = CONTACT_ENTITY[m.contacts.source]
    if contact_entity != "organization_contacts" and "contacts" in tables:
        rows += namesake_rows(tables["contacts"], contact_entity, decisions)
    listed = pd.DataFrame(rows, columns=CLUSTER_COLUMNS).astype(
        {"score": "float64", "size": "int64", "survivor_id": "Int64"}
    )
    parts = [p.astype(before.dtypes.to_dict(), errors="ignore") for p in (kept, decided, listed) if len(p)]
    spliced = pd.concat(parts, ignore_index=True) if parts else before.iloc[0:0]
    return validate(MODELS["duplicate_clusters"], spliced)


def party_counts(
    con: duckdb.DuckDBPyConnection,
    m: Mapping,
    last: dict[str, dict[str, int]],
    tables: dict[str, pd.DataFrame],
) -> dict[str, dict[str, int]]:
    """The last staging's counts with the clients' and contacts' recounted from the spliced
    tables (the children's are `incremental.spliced_counts`')."""
    out = {entity: dict(c) for entity, c in last.items()}
    clusters = tables["duplicate_clusters"]
    merged = clusters[clusters["kind"] == "merged"]
    read = dict(
        con.execute(
            f"select entity, count(*) from {m.name}.{SEEN_TABLE} "
            "where entity in ('organizations', 'persons') group by entity"
        ).fetchall()
    )
    clients = tables["clients"]
    for table, extracted in (
        ("clients", int(read.get(m.clients.source, 0))),
        (
            "contacts",
            int((clients["source"] == "organizations").sum())
            if m.contacts.source == "organizations"
            else int(read.get("persons", 0)),
        ),
    ):
        mine = merged[merged["cluster_id"].str.startswith(f"{table}:")]
        out[table] = counts(extracted, len(tables[table]), int((mine["size"] - 1).sum()))
    return out
