"""Helpers several test modules share: what DuckDB staged, and what CustomerX holds."""

from __future__ import annotations

from pathlib import Path

import duckdb

from ploomes_cx.runtime.duckdb_io import database_path
from ploomes_cx.sandbox import CustomerXSandbox


def staged(home: Path, name: str, table: str, columns: str = "external_id") -> list[tuple]:
    with duckdb.connect(str(database_path(home, name)), read_only=True) as con:
        return con.execute(f"select {columns} from {name}.{table} order by 1").fetchall()


def cx_state(cx: CustomerXSandbox) -> dict[str, list[tuple]]:
    """What CustomerX holds, without its own ids and timestamps: comparable across accounts."""
    records = cx.store.records

    def client_of(record: dict) -> str | None:
        """A record's client as CustomerX links it (by `client_id`): its current external id."""
        client = records["clients"].get(record.get("client_id"))
        return client.get("external_id_client") if client else record.get("external_id_client")

    return {
        "clients": sorted(
            (c["external_id_client"], c["company_name"], c.get("cnpj_cpf"), c.get("email"))
            for c in records["clients"].values()
        ),
        "contacts": sorted(
            (c["external_id_contact"], client_of(c), c["email"]) for c in records["contacts"].values()
        ),
        "contracts": sorted(
            (c["external_id_contract"], client_of(c), c["contract_value"])
            for c in records["contracts"].values()
        ),
        "timelines": sorted(
            (client_of(t), t["title"], t["created_at"]) for t in records["timelines"].values()
        ),
    }
