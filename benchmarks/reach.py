"""`python -m benchmarks.reach`: the SQL neighbourhood of a few changed records over the identity
index of a million-record account (issue 30, point 1), against its share of the live path's
5-second budget (a tenth).

The index is synthetic, in the shape `staging/neighbourhood.identity_rows` gives (one row per
identifier value): two thirds of the records with a CNPJ (a tenth of them shared
by two records), three quarters with an e-mail (one record in 50 on one of seven accountants'
addresses, shared by thousands), one in ten with an external code shared by two.

Then what finding the changed records costs each staging (`reach.refresh_seen`):
a digest of 1.25 million one-kilobyte payloads (a million persons and
their organizations) with DuckDB's `hash`, which it uses, and with `md5`, and the comparison of
two such digest tables.
"""

from __future__ import annotations

import argparse
import time

import duckdb

from ploomes_cx.staging.neighbourhood import neighbourhood_sql

CEILING_S = 0.5  # a tenth of the 5 s a single live change may take, change to CustomerX


def build_index(con: duckdb.DuckDBPyConnection, records: int) -> None:
    con.execute(
        f"""create or replace table idx as
        select i as ploomes_id, 'cnpj_cpf' as identifier, 'd' || (i % {records * 9 // 10})::varchar as value
            from range({records}) t(i) where i % 3 <> 0
        union all
        select i, 'email', case when i % 50 = 0 then 'fiscal' || (i % 7)::varchar else 'e' || i::varchar end
            from range({records}) t(i) where i % 4 <> 0
        union all
        select i, 'external_code', 'c' || (i % {records // 2})::varchar
            from range({records}) t(i) where i % 10 = 0"""
    )


def digests(records: int) -> None:
    with duckdb.connect() as con:
        con.execute(
            f"""create table raw as select i as id,
                ('{{"Id":' || i || ',"Name":"' || repeat('x', 900) || '"}}')::json as payload
                from range({records}) t(i)"""
        )
        for digest in ("hash", "md5"):
            started = time.perf_counter()
            con.execute(
                f"create or replace table seen_{digest} as select id, {digest}(payload::varchar) d from raw"
            )
            print(f"digest of {records:,} payloads with {digest:<4} {time.perf_counter() - started:.2f} s")
        started = time.perf_counter()
        con.execute(
            "select count(*) from (select id, hash(payload::varchar) d from raw) c "
            "full outer join seen_hash s on s.id = c.id where c.d is distinct from s.d"
        ).fetchone()
        print(f"changed records found against the last digests {time.perf_counter() - started:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    with duckdb.connect() as con:
        build_index(con, args.records)
        rows = con.execute("select count(*) from idx").fetchone()[0]
        print(f"identity index: {args.records:,} records, {rows:,} rows")
        stride = args.records // 10
        for label, seeds in (
            ("1 change", [stride + 7]),
            ("10 changes", [stride * k + 3 for k in range(10)]),
            ("an accountant's e-mail", [50]),
        ):
            started = time.perf_counter()
            reach = neighbourhood_sql(con, "idx", seeds)
            took = time.perf_counter() - started
            print(
                f"{label:<24} {len(reach):>6} records reached in {took:.2f} s (ratio {took / CEILING_S:.2f} of {CEILING_S} s)"
            )
    digests(args.records * 5 // 4)


if __name__ == "__main__":
    main()
