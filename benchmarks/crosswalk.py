"""The crosswalk's costs: one-row DuckDB writes against `ledger.Crosswalk` batches, and the
merged-client queries every load step runs (`load/merges.py`) on a million clients.

Run: `python -m benchmarks.crosswalk`. Synthetic file in a temporary folder; no API involved.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import duckdb

from ploomes_cx.load import ledger, merges

ROWS = 2_000
CLIENTS = 1_000_000


def _writes(con: duckdb.DuckDBPyConnection) -> tuple[float, float]:
    """Milliseconds per crosswalk row: each row on its own, then through `Crosswalk`."""
    one = ledger.Crosswalk(con, "cw", "contacts", "one")
    one.BATCH = 1  # every row flushed alone, as before batches
    start = time.perf_counter()
    for i in range(ROWS):
        one.remember(f"a{i}", i, "h", {"email": f"a{i}@x"}, "sent")
    alone = (time.perf_counter() - start) / ROWS * 1000
    batched = ledger.Crosswalk(con, "cw", "contacts", "many")
    start = time.perf_counter()
    for i in range(ROWS):
        batched.remember(f"b{i}", i, "h", {"email": f"b{i}@x"}, "sent")
    batched.flush()
    return alone, (time.perf_counter() - start) / ROWS * 1000


def _merges(con: duckdb.DuckDBPyConnection) -> tuple[float, float, float]:
    """Seconds of `merged_away` with no pair held, with 1,000 held, and of the holding check."""
    con.execute(f"""create table cw.stg_clients as select i::varchar as external_id,
        case when i % 20 = 0 then (i + 5000000)::varchar || ',' || (i + 6000000)::varchar else '' end as aliases
        from range({CLIENTS}) t(i)""")
    con.execute(f"""insert into cw.crosswalk select 'clients', i::varchar, i, 'h', '{{}}', 'sent', now(), 'r'
        from range({CLIENTS}) t(i)""")
    con.execute(f"""insert into cw.crosswalk select 'contacts', 'c' || i, i, 'h',
        '{{"external_id_client": "' || i || '"}}', 'sent', now(), 'r' from range({CLIENTS}) t(i)""")
    con.execute(f"create table cw.stg_contacts as select 'c' || i as external_id from range({CLIENTS}) t(i)")
    start = time.perf_counter()
    merges.merged_away(con, "cw")
    none = time.perf_counter() - start
    con.execute("""insert into cw.crosswalk select 'clients', (i + 5000000)::varchar, i + 5000000, 'h', null,
        'sent', now(), 'r' from range(0, 20000, 20) t(i)""")
    start = time.perf_counter()
    away = merges.merged_away(con, "cw")
    held = time.perf_counter() - start
    start = time.perf_counter()
    merges._still_holding(con, "cw", set(away))
    return none, held, time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as folder, duckdb.connect(str(Path(folder) / "bench.duckdb")) as con:
        ledger.ensure(con, "cw")
        alone, batched = _writes(con)
        print(f"crosswalk rows, {ROWS}: {alone:.2f} ms each alone, {batched:.2f} ms each in batches")
        none, held, holding = _merges(con)
    print(
        f"merged clients, {CLIENTS:,} staged ({CLIENTS // 20:,} with aliases): merged_away {none * 1000:.0f} ms "
        f"with none held, {held * 1000:.0f} ms with 1,000 pairs held; still-holding check {holding * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
