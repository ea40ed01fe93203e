"""Staging only what changed (docs/incremental-staging.md), and when it cannot.

A won deal, a note or a task arriving through a webhook or a window changes its own contract or
timeline row and nothing else: clients and contacts are computed from organizations and persons
alone, and a child finds its client among those the last staging stored (`stored.py`). A changed
organization or person changes the rows of the records it is linked to, by the values it had at
the last staging or has now (`identity_index.py`), and their children's. So the records a change
reaches are staged alone (`build_staging(only=...)`) and their rows replace the old ones in the
tables the last staging left (`splice.py`, `party_splice.py`); every other row stays as it was.

A change to the decisions file reaches the Ids its decisions name now and named at the last
staging (`log.record_decided`), staged alone the same way.

Anything else stages everything: the first staging, a full re-stage asked for, a mapping changed
since, decisions changed when the last staging kept no list of the Ids they named, a reconcile
that found records gone, mappings whose clients, contacts or contracts depend on more than one
record's own (clients or contacts from deals, contracts from deal products), and rows a table
contract refused last time (they are checked again whole). `why_full` names the reason, shown on the staging asset.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from ploomes_cx.mapping import Mapping
from ploomes_cx.plan import Plan
from ploomes_cx.reconcile import tombstones
from ploomes_cx.runtime.duckdb_io import fetch_frame, one_row, table_exists
from ploomes_cx.staging.identity_index import INDEX_TABLE
from ploomes_cx.staging.log import StagingMark
from ploomes_cx.staging.reach import Reach
from ploomes_cx.staging.splice import made_from, splice_table

CHILD_TABLES = ("contracts", "timeline")
# the `rejected.entity` of a child's own rejection, per counted table
REJECTED_AS = {"contracts": ("won_deals",), "timeline": ("notes", "tasks", "attachments")}
SIDE_TABLES = ("rejected", "duplicate_clusters")


def why_full(
    con: duckdb.DuckDBPyConnection,
    m: Mapping,
    mark: StagingMark | None,
    now: StagingMark,
    seeds: Reach,
    gone_changed: bool,
    decided_kept: bool = False,
) -> str | None:
    """Why this staging (`now`) must stage every record, or None when what the changed records
    reach can be staged alone; `mark` is the last staging's, `seeds` the records changed since
    (`reach.refresh_seen`), `decided_kept` whether it kept the Ids its decisions named."""
    if mark is None:
        return "no staging before this one"
    if mark.mapping_digest != now.mapping_digest:
        return "the mapping, or the type of a mapped custom field, changed since the last staging"
    if mark.decisions_digest != now.decisions_digest and not decided_kept:
        return "the decisions changed since the last staging, which kept no list of the Ids they named"
    if m.clients.source == "deals" or m.contacts.source == "deals":
        return "clients or contacts come from deals: a changed deal can make or unmake one"
    if m.contracts.source == "deal_products":
        return "contracts come from deal products, which are staged whole"
    plan = Plan.of(m)
    missing = [t for t in (*plan.staged, *SIDE_TABLES) if not table_exists(con, m.name, plan.table(t))]
    if missing:
        return f"no {plan.table(missing[0])} table from the last staging"
    if seeds.get("contacts") and not table_exists(con, m.name, INDEX_TABLE):
        return (
            "organizations or persons changed and the last staging left no identity index "
            f"({m.name}.{INDEX_TABLE}) to find what they reach"
        )
    if _gone_since(con, m.name, mark):
        return "a reconcile found records gone from Ploomes since the last staging"
    if gone_changed:
        return "parents asked for by Id were found gone, or back, since the last staging"
    if _holders_disagree(con, m.name):
        return (
            "CustomerX has a contact of ours holding an e-mail or a client the staged contacts do "
            "not give it (an adoption, a hand-over, a refused update): contacts are staged whole"
        )
    refused = one_row(con, f"select count(*) from {m.name}.rejected where entity like 'stg\\_%' escape '\\'")
    if refused and refused[0]:
        return "rows a table contract refused last time are checked again whole"
    return None


def _holders_disagree(con: duckdb.DuckDBPyConnection, schema: str) -> bool:
    """Whether a contact CustomerX holds from us (the crosswalk) is not staged as sent: who keeps
    a shared e-mail, or a phone within a client, is its holder there (`contacts._holders`), so a
    holder that is not the staged contact with that e-mail, client and phone would change the kept
    contact rows. The phone is compared as the body carries it (`bodies._phones`: DDI and number)."""
    if not table_exists(con, schema, "crosswalk"):
        return False
    row = one_row(
        con,
        f"""with held as (
                select external_id as ext, lower(body::json->>'email') as email,
                       body::json->>'external_id_client' as client,
                       coalesce(body::json->'phones'->0->>'ddi', '') || (body::json->'phones'->0->>'number') as phone
                from {schema}.crosswalk where entity = 'contacts' and state = 'sent' and body is not null)
            select count(*) from held h left join {schema}.stg_contacts c on c.external_id = h.ext
            where c.external_id is null or lower(coalesce(c.email, '')) <> coalesce(h.email, '')
               or c.client_external_id is distinct from h.client
               or coalesce(c.phone, '') <> coalesce(h.phone, '')""",
    )
    return bool(row and row[0])


def _gone_since(con: duckdb.DuckDBPyConnection, schema: str, mark: StagingMark) -> bool:
    if not table_exists(con, schema, tombstones.TABLE):
        return False
    found = one_row(
        con, f"select count(*) from {schema}.{tombstones.TABLE} where found_at >= ?", [mark.started_at]
    )
    return bool(found and found[0])


def previous_tables(con: duckdb.DuckDBPyConnection, m: Mapping) -> dict[str, pd.DataFrame]:
    """The tables the last staging left, as the staging built them."""
    plan = Plan.of(m)
    return {
        t: fetch_frame(con, f"select * from {m.name}.{plan.table(t)}") for t in (*plan.staged, *SIDE_TABLES)
    }


def splice_children(
    before: dict[str, pd.DataFrame], restaged: dict[str, pd.DataFrame], reach: Reach
) -> dict[str, pd.DataFrame]:
    """The tables before, with the rows of the reached children replaced by their re-stage's."""
    out = dict(before)
    for table in (*CHILD_TABLES, "rejected"):
        if table in before:
            fresh = restaged[table].astype(before[table].dtypes.to_dict(), errors="ignore")
            out[table] = splice_table(table, before[table], fresh, reach)
    return out


def spliced_counts(
    counts: dict[str, dict[str, int]],
    before: dict[str, pd.DataFrame],
    restaged_counts: dict[str, dict[str, int]],
    reach: Reach,
) -> dict[str, dict[str, int]]:
    """The last staging's counts, less what the reached children counted then, plus their re-stage's."""
    out = {entity: dict(c) for entity, c in counts.items()}
    rejected = before["rejected"]
    rejected = rejected[rejected["outcome"] == "rejected"]
    for table in CHILD_TABLES:
        if table not in out or table not in before:
            continue
        staged = int(_reached(table, before[table], reach).sum())
        mine = rejected[rejected["entity"].isin(REJECTED_AS[table])]
        refused = int(_reached("rejected", mine, reach).sum())
        was = {"extracted": staged + refused, "staged": staged, "merged": 0, "rejected": refused}
        now = restaged_counts.get(table, {})
        out[table] = {k: out[table][k] - was[k] + int(now.get(k, 0)) for k in out[table]}
    return out


def _reached(table: str, frame: pd.DataFrame, reach: Reach) -> pd.Series:
    wanted = [(space, int(i)) for space, ids in reach.items() for i in ids] or [("", -1)]
    return pd.Series(made_from(table, frame).isin(wanted), index=frame.index)
