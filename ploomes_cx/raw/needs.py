"""Which records a window's records need and no synced window holds (§4.1, dependencies by Id).

A person needs its organization, a deal its contact (and its person when contacts come from
deals), a note, task or attachment its contact and deal, a won deal its orders and last quote
(for `deal_products`). What the mapping's tables never read is never asked for. The references
are read with DuckDB out of the stored payloads; "held" means present in any raw table of the
mapping, fetched for another window, or read for a webhook event.
"""

from __future__ import annotations

import duckdb

from ploomes_cx.mapping import Mapping
from ploomes_cx.plan import CONTACTS, DEALS, ORDERS, QUOTES, references
from ploomes_cx.ploomes.payloads import WON
from ploomes_cx.runtime.duckdb_io import table_exists

# the raw entities a fetched parent is stored as, by the Ploomes set it came from
STORED_AS = {
    CONTACTS: ("organizations", "persons"),
    DEALS: ("deals",),
    ORDERS: ("orders",),
    QUOTES: ("quotes",),
}
DEPENDENCIES_TABLE = "raw_dependencies"
LIVE_TABLE = "raw_live"  # records re-read by Id for webhook events (`live/assets.py`), and their parents
FETCHED_TABLES = (DEPENDENCIES_TABLE, LIVE_TABLE)  # same columns: records fetched by Id, not by window


def _held(con: duckdb.DuckDBPyConnection, schema: str, parent: str, outside: str) -> str:
    """SQL of the ids of `parent` already held (for orders: the deals whose orders are held)."""
    column = "(payload->>'$.DealId')::bigint" if parent == ORDERS else "id"
    parts = [
        f"select {column} as id from {schema}.raw_{entity}"
        for entity in STORED_AS[parent]
        if table_exists(con, schema, f"raw_{entity}")
    ]
    entities = ", ".join(f"'{e}'" for e in STORED_AS[parent])
    if table_exists(con, schema, DEPENDENCIES_TABLE):
        parts.append(
            f"select {column} as id from {schema}.{DEPENDENCIES_TABLE} where entity in ({entities}) "
            f"and payload is not null and {outside}"
        )
    if table_exists(con, schema, LIVE_TABLE):  # every live read counts: it is not any window's
        parts.append(
            f"select {column} as id from {schema}.{LIVE_TABLE} where entity in ({entities}) and payload is not null"
        )
    return " union all ".join(parts) or "select null::bigint as id where false"


def needed(
    con: duckdb.DuckDBPyConnection, m: Mapping, sources: dict[str, str], outside: str
) -> dict[str, dict[int, tuple[str, object]]]:
    """Per parent kind, the ids needed and not held, each with the first record that needs it and
    the earliest window needing it (the window its row is stored in).

    `sources`: child entity -> SQL of its rows to read (`id`, `payload`, `window_start`);
    `outside`: SQL condition on `window_start` true of the fetches of other runs' windows (this
    run's own earlier fetches do not count as held).
    """
    out: dict[str, dict[int, tuple[str, object]]] = {}
    for parent in (CONTACTS, DEALS, ORDERS, QUOTES):
        selects = []
        for ref in references(m):
            if ref.parent != parent or ref.child not in sources:
                continue
            won = f" and (payload->>'$.StatusId')::int = {WON}" if ref.won_only else ""
            selects.append(
                f"select (payload->>'{ref.path}')::bigint as ref, "
                f"concat('{ref.child} ', id, ' {ref.path[2:]}') as needed_by, window_start "
                f"from ({sources[ref.child]}) where true{won}"
            )
        if not selects:
            continue
        rows = con.execute(f"""
            select ref, min(needed_by), min(window_start) from ({" union all ".join(selects)})
            where ref is not null and ref > 0
                and ref not in (select id from ({_held(con, m.name, parent, outside)}) where id is not null)
            group by ref order by ref
        """).fetchall()
        if rows:
            out[parent] = {int(r[0]): (str(r[1]), r[2]) for r in rows}
    return out
