"""Raw layer, second step of a window: the parents its records need, fetched by Id (§4.1).

After the window's extracts, every record a stored record points at and no synced window holds
(a person's organization last changed a year ago, a note's deal) is read by Id in the same run,
in rounds until nothing new is needed (a fetched deal may need its contact, a fetched person its
organization). Nothing is asked twice in one run. A parent Ploomes no longer has is stored as a
row without payload, so staging can say `parent_deleted` instead of `client_not_found`.
"""

import json
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pandas as pd
from dagster import AssetExecutionContext
from dagster_duckdb import DuckDBResource

from ploomes_cx.mapping import Mapping
from ploomes_cx.metadata import RECORDS, markdown
from ploomes_cx.partitions import backfill_policy, partitions_def
from ploomes_cx.plan import CONTACTS, DEALS, ORDERS, QUOTES, Plan, references
from ploomes_cx.ploomes.client import CallStats, PloomesApi, PloomesAuthError, PloomesRequestError
from ploomes_cx.ploomes.entities import ENTITIES
from ploomes_cx.ploomes.resource import PloomesResource
from ploomes_cx.raw.assets import STEP_RETRIES, _failure, _stats_metadata
from ploomes_cx.raw.frames import DEPENDENCY_COLUMNS, Fetched, dependency_frame
from ploomes_cx.raw.needs import needed
from ploomes_cx.runtime.duckdb_io import connection, table_exists

MAX_ROUNDS = 6  # the longest chain: note -> deal -> person -> organization, and a margin
# what each parent kind is read from: (entity spec, the key the ids are matched on)
SOURCES = {
    CONTACTS: ("organizations", "Id"),
    DEALS: ("deals", "Id"),
    ORDERS: ("orders", "DealId"),
    QUOTES: ("quotes", "Id"),
}
CONTACT_TYPES = {1: "organizations", 2: "persons"}


def _fetch(
    api: PloomesApi, parent: str, ids: dict[int, tuple[str, Any]], wanted: set[str], stats: CallStats
) -> list[Fetched]:
    """One parent kind's records; every asked Id not returned is a `Fetched` without record
    (orders are asked by deal, and a deal without an order is not missing anything)."""
    spec_name, key = SOURCES[parent]
    spec = ENTITIES[spec_name]
    out: list[Fetched] = []
    found: set[int] = set()
    for page in api.iter_by_ids(spec.path, list(ids), spec.expand, stats, key=key):
        for record in page:
            ref = int(record.get(key) or 0)
            found.add(ref)
            entity = CONTACT_TYPES.get(record.get("TypeId"), "") if parent == CONTACTS else spec_name
            if entity in wanted:
                by, window = ids.get(ref, ("", None))
                out.append(Fetched(entity, int(record["Id"]), record, by, window))
    if parent != ORDERS:
        out += [Fetched(parent, i, None, by, window) for i, (by, window) in ids.items() if i not in found]
    return out


def frontier(con: duckdb.DuckDBPyConnection, fetched: list[Fetched]) -> dict[str, str]:
    """Fetched records as `needed`'s sources (the last round's, or the records of webhook events)."""
    frame = pd.DataFrame(
        [(f.entity, f.id, _json(f.record), f.window_start) for f in fetched if f.record is not None],
        columns=["entity", "id", "payload", "window_start"],
    )
    frame["window_start"] = pd.to_datetime(frame["window_start"]).astype("datetime64[us]")
    con.register("_dep_frontier", frame)
    return {
        e: f"select id, payload::json as payload, window_start from _dep_frontier where entity = '{e}'"
        for e in set(frame["entity"])
    }


def _json(record: dict[str, Any] | None) -> str:
    return json.dumps(record, ensure_ascii=False)


def fetch_dependencies(
    con: duckdb.DuckDBPyConnection, api: PloomesApi, m: Mapping, window: dg.TimeWindow, stats: CallStats
) -> list[Fetched]:
    """Every parent the run's records need (its windows'), in rounds, each Id asked once."""
    children = {r.child for r in references(m)}
    start, end = (
        f"'{t.replace(tzinfo=None).isoformat(sep=' ')}'::timestamp" for t in (window.start, window.end)
    )
    inside = f"window_start >= {start} and window_start < {end}"
    sources = {
        c: f"select id, payload, window_start from {m.name}.raw_{c} where {inside}"
        for c in children
        if table_exists(con, m.name, f"raw_{c}")
    }
    return fetch_needed(con, api, m, sources, f"not ({inside})", stats)


def fetch_needed(
    con: duckdb.DuckDBPyConnection,
    api: PloomesApi,
    m: Mapping,
    sources: dict[str, str],
    outside: str,
    stats: CallStats,
) -> list[Fetched]:
    """The parents the `sources` records need and nothing holds, in rounds until a round needs
    nothing new (a fetched deal may need its contact), each Id asked once (`needs.needed` says
    what `sources` and `outside` are)."""
    plan = Plan.of(m)
    asked: dict[str, set[int]] = {}
    fetched: list[Fetched] = []
    for _ in range(MAX_ROUNDS):
        needs = {
            parent: {i: by for i, by in ids.items() if i not in asked.get(parent, set())}
            for parent, ids in needed(con, m, sources, outside).items()
        }
        needs = {parent: ids for parent, ids in needs.items() if ids}
        if not needs:
            break
        round_rows: list[Fetched] = []
        for parent, ids in needs.items():
            asked.setdefault(parent, set()).update(ids)
            round_rows += _fetch(api, parent, ids, set(plan.extracts), stats)
        fetched += round_rows
        sources = frontier(con, round_rows)
    return fetched


def build_dependencies_asset(m: Mapping) -> dg.AssetsDefinition | None:
    """The mapping's `raw_dependencies` asset, or None when its tables follow no reference."""
    plan = Plan.of(m)
    if not plan.fetches_dependencies:
        return None
    ploomes_key, duck_key = plan.ploomes_resource, plan.duckdb_resource
    naive_zone = ZoneInfo(m.ploomes.naive_datetime_timezone)

    @dg.asset(
        key=plan.raw_key("dependencies"),
        group_name=plan.group("raw"),
        kinds={"ploomes", "duckdb"},
        partitions_def=partitions_def(m),
        backfill_policy=backfill_policy(m),
        io_manager_key=plan.io_manager,
        required_resource_keys={ploomes_key, duck_key},
        deps=[plan.raw_key(e) for e in plan.entity_extracts],
        pool=plan.ploomes_pool,
        retry_policy=STEP_RETRIES,
        metadata={"partition_expr": "window_start", "dagster/column_schema": DEPENDENCY_COLUMNS},
        description=(
            "Records the window's records point at and no synced window holds (a person's organization, a "
            "deal's contact, a note's deal, a won deal's orders and last quote), fetched by Id in the same run "
            "(`$filter=Id in (...)`, paced like every request) and staged like any other record. A row without "
            "payload is a parent Ploomes no longer has: its children are rejected as `parent_deleted`."
        ),
    )
    def raw_dependencies(context: AssetExecutionContext) -> pd.DataFrame:
        resource: PloomesResource = getattr(context.resources, ploomes_key)
        duck: DuckDBResource = getattr(context.resources, duck_key)
        window = context.partition_time_window
        stats = CallStats()
        # the account's turn before the DuckDB file: every step takes them in this order
        with (
            resource.one_step_at_a_time(context.log),
            resource.api(context.log) as api,
            connection(duck) as con,
        ):
            try:
                fetched = fetch_dependencies(con, api, m, window, stats)
            except (PloomesAuthError, PloomesRequestError) as exc:
                raise _failure(exc) from None
        frame = dependency_frame(fetched, window, naive_zone, context.run_id)
        missing = frame[frame["payload"].isna()]
        context.add_output_metadata(
            {
                **_stats_metadata(stats, window),
                RECORDS: int(frame["payload"].notna().sum()),
                "by_entity": dg.MetadataValue.json(frame["entity"].value_counts().to_dict()),
                "not_found": len(missing),
                "preview": markdown(frame[["entity", "id", "needed_by", "changed_at"]], limit=10),
            }
        )
        return frame

    return raw_dependencies
