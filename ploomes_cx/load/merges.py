"""Clients merged after both were loaded: what CustomerX holds under the merged-away client moves
to the survivor, then the merged-away client is handled by `deletes.policy`.

A decision (`mappings/<name>.decisions.csv`, §4.4) or a corrected identifier can make one client
of two that CustomerX already holds apart. Staging then lists only the survivor, the other as one
of its aliases. Left alone, CustomerX would keep half of that customer's records on a client we
no longer update. So, in every load step:

- each child held under a merged-away client moves to the survivor (`move`, called by the load
  loop before anything else about the record):
  - a contract is updated onto the survivor, one PUT carrying the survivor's
    `external_id_client`. That CustomerX moves a contract this way is inferred (customerx-api.md
    §8.3 lists the field on writes and says nothing against changing it); a refusal is a
    rejected record in the ledger and the merged-away client then stays, so nothing is lost;
  - a contact cannot change client (§8.2, C [S2]): it is deleted and created again on the
    survivor (deleted first: its e-mail is unique in the account). If CustomerX refuses it on
    the survivor, it is created again where it was, and the refusal is in the ledger;
  - a timeline entry is posted once and never deleted: it is posted again on the survivor, and
    the entry on the merged-away client stays with it;
- then the merged-away client, once no staged record is held under it any more (`retire`, at the
  end of every load step, so the step that moves the last child settles it in the same run):
  `delete` deletes it in CustomerX; `ignore` and `cancel` keep it as it is (its contracts moved,
  so there is nothing of ours left to cancel). Deleted, it leaves the crosswalk; kept, its
  crosswalk row leaves the `sent` state for `merged`, so we stop updating it. The ledger says
  which client took it.

If the kept one later survives again (its Ploomes record changed last), it takes back its own
CustomerX record (`load/adoption.py`: its external id is taken there, so it cannot adopt the
other's) and the other one is merged away in turn, by the same steps.

A merged-away client whose survivor CustomerX does not hold yet needs none of this: the survivor
adopts its CustomerX record (`load/adoption.py`), children and all.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import duckdb

from ploomes_cx.customerx import deletes
from ploomes_cx.customerx.bodies import client_of, contract_body
from ploomes_cx.customerx.client import CallStats, CustomerXApi, CustomerXRejected
from ploomes_cx.customerx.endpoints import RESOURCES
from ploomes_cx.load import ledger
from ploomes_cx.load.hashes import content_hash
from ploomes_cx.mapping import Mapping
from ploomes_cx.runtime.duckdb_io import table_exists

if TYPE_CHECKING:
    from ploomes_cx.load.loop import EntityLoad, Planned

CHILD_TABLES = {"contacts": "stg_contacts", "contracts": "stg_contracts", "timeline": "stg_timeline"}


def merged_away(con: duckdb.DuckDBPyConnection, schema: str) -> dict[str, str]:
    """Merged-away client -> survivor, for the pairs CustomerX holds as two clients from us."""
    if not (table_exists(con, schema, "stg_clients") and table_exists(con, schema, "crosswalk")):
        return {}
    rows = con.execute(
        f"""with pairs as (
                select unnest(string_split(aliases, ',')) as alias, external_id as survivor
                from {schema}.stg_clients where coalesce(aliases, '') <> '')
            select p.alias, p.survivor from pairs p
            join {schema}.crosswalk a on a.entity = 'clients' and a.external_id = p.alias and a.state = 'sent'
            join {schema}.crosswalk s on s.entity = 'clients' and s.external_id = p.survivor
                and s.state = 'sent'
            where a.customerx_id is distinct from s.customerx_id"""
    ).fetchall()
    return {str(alias): str(survivor) for alias, survivor in rows}


def move(load: EntityLoad, item: Planned, mine: ledger.Known) -> tuple[str, str]:
    """Put one child held under a merged-away client on its survivor; the ledger's outcome and detail."""
    held = client_of(mine.body or {})
    survivor = str(item.row.get("client_external_id"))
    why = f"client {held} was merged into client {survivor} (see duplicate_clusters)"
    if load.entity == "contracts":
        body = contract_body(item.row, load.m)
        load.call(RESOURCES["contracts"].update, external_id=item.ext, body=body)
        load.remember(item.ext, mine.customerx_id, content_hash(body), body, "sent")
        return "moved", f"{why}; updated onto {survivor}"
    if load.entity == "timeline":
        load.post_once(item, None)  # a new entry, on the survivor
        return (
            "moved",
            f"{why}; posted again on {survivor} (the entry on {held} stays: entries are never deleted)",
        )
    return "moved", _move_contact(load, item, mine, held, why)


def _move_contact(load: EntityLoad, item: Planned, mine: ledger.Known, held: str | None, why: str) -> str:
    assert load.api is not None
    # a 404 is confirmed by a read before the contact counts as gone (a run killed after this
    # delete), else it is deleted by its CustomerX id (customerx/deletes.py)
    deletes.delete(load.api, "contacts", item.ext, mine.customerx_id, load.report.stats)
    try:
        found = load.create(item)
    except CustomerXRejected as exc:
        back = _put_back(load, item, mine)
        raise CustomerXRejected(
            exc.status, f"{exc.body} (while moving it from client {held}: {back})", exc.operation, item.ext
        ) from None
    if found is not None:  # created by a run killed before it could say so
        load.adopt(item, found)
    return (
        f"{why}; CustomerX cannot move a contact between clients, so it was deleted from {held} "
        f"and created on {item.row.get('client_external_id')}"
    )


def _put_back(load: EntityLoad, item: Planned, mine: ledger.Known) -> str:
    """The contact as it was, on the client it was on: a refused move loses nothing."""
    try:
        result, _ = load.call(RESOURCES["contacts"].create, body=mine.body)
    except CustomerXRejected as exc:
        return f"putting it back was refused too (HTTP {exc.status}); the next sync creates it again"
    load.remember(item.ext, (result or {}).get("id"), mine.content_hash, mine.body, "sent")
    return f"put back on client {client_of(mine.body or {})}"


def would_settle(m: Mapping, con: duckdb.DuckDBPyConnection) -> Counter:
    """What a dry run says: every merged-away client, as the step moving its last record would
    handle it (`would_delete` or `would_keep`)."""
    found = len(merged_away(con, m.name))
    return (
        Counter({"would_delete" if m.deletes.policy == "delete" else "would_keep": found})
        if found
        else Counter()
    )


def retire(
    m: Mapping, api: CustomerXApi, con: duckdb.DuckDBPyConnection, run_id: str, stats: CallStats
) -> Counter:
    """Settle each merged-away client nothing staged is held under any more, per `deletes.policy`."""
    away = merged_away(con, m.name)
    if not away:
        return Counter()
    waiting = _still_holding(con, m.name, set(away))
    done: Counter = Counter()
    rows: list[tuple[Any, ...]] = []
    try:
        for alias, survivor in sorted(away.items()):
            if alias in waiting:
                continue
            outcome, status, detail = _retire_one(m, api, con, run_id, stats, alias, survivor)
            done[outcome] += 1
            rows.append((run_id, "clients", alias, outcome, status, detail, ledger.now()))
    finally:
        ledger.append_ledger(con, m.name, rows)
    return done


def _retire_one(
    m: Mapping,
    api: CustomerXApi,
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    stats: CallStats,
    alias: str,
    survivor: str,
) -> tuple[str, int | None, str]:
    what = f"merged into client {survivor} (see duplicate_clusters); its contacts, contracts and timeline moved there"
    if m.deletes.policy != "delete":
        ledger.set_state(con, m.name, "clients", alias, ledger.MERGED, run_id)
        kept = (
            "deletes.policy: ignore"
            if m.deletes.policy == "ignore"
            else "its contracts moved: nothing to cancel"
        )
        return "merged_away", None, f"{what}; kept in CustomerX as it is ({kept})"
    try:
        gone = deletes.delete(
            api, "clients", alias, ledger.customerx_id(con, m.name, "clients", alias), stats
        )
    except CustomerXRejected as exc:
        return "rejected", exc.status, f"{what}; deleting it was refused: {exc.body[:300]}"
    ledger.forget(con, m.name, "clients", alias)
    return "deleted", None, f"{what}; {gone.detail} (deletes.policy: delete)"


def _still_holding(con: duckdb.DuckDBPyConnection, schema: str, clients: set[str]) -> set[str]:
    """Which of `clients` still hold, in CustomerX, a record staging lists (one yet to move)."""
    tables = [(e, t) for e, t in CHILD_TABLES.items() if table_exists(con, schema, t)]
    if not tables:
        return set()
    held = " union all ".join(
        f"""select x.body::json->>'external_id_client' as client from {schema}.crosswalk x
            semi join {schema}.{table} t on t.external_id = x.external_id
            where x.entity = '{entity}' and x.body::json->>'external_id_client' in (select unnest($1))"""
        for entity, table in tables
    )
    rows = con.execute(f"select distinct client from ({held})", [sorted(clients)]).fetchall()
    return {str(r[0]) for r in rows}
