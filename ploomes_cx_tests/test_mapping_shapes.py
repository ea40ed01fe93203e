"""Every mapping shape, end to end: sandbox to sandbox over real HTTP, through Dagster and the CLI.

Each test syncs three windows of a dirty sandbox account, checks what CustomerX holds against
what Ploomes holds (custom fields of every type read back from the Ploomes API, not from our
staging), and re-runs the windows to see no write at all.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from ploomes_cx.cli import main
from ploomes_cx.mapping import load_mapping
from ploomes_cx.runtime.duckdb_io import database_path
from ploomes_cx.sandbox import CustomerXSandbox, PloomesDataset, PloomesSandbox
from ploomes_cx.sandbox.ploomes_fields import field_key
from ploomes_cx_tests.conftest import CX_TOKEN, SECRET_KEY, point_at
from ploomes_cx_tests.spec import expected_text

WINDOWS = "2026-11-02..2026-11-04"
CONTACT_FIELDS = {  # FieldKey -> CustomerX attribute: one field of every type
    field_key("contact", 0x0A): "segmento",  # option list
    field_key("contact", 0x0B): "funcionarios",  # integer
    field_key("contact", 0x0C): "fundacao",  # date
    field_key("contact", 0x11): "observacoes",  # long text
    field_key("contact", 0x12): "faturamento",  # decimal
    field_key("contact", 0x13): "ativo",  # boolean
    field_key("contact", 0x14): "responsavel",  # user
}
DEAL_FIELDS = {
    field_key("deal", 0x0E): "plano",  # text
    field_key("deal", 0x0F): "recorrente",  # boolean
    field_key("deal", 0x10): "valor_mensal",  # decimal
    field_key("deal", 0x15): "renovacao",  # date
    field_key("deal", 0x16): "licencas",  # integer
    field_key("deal", 0x17): "canal",  # option list
}


def _custom_block(entity: str, fields: dict[str, str]) -> str:
    return f"  {entity}:\n" + "".join(
        f"    - ploomes: {k}\n      customerx: {v}\n" for k, v in fields.items()
    )


class PloomesReader:
    """Reads records straight from the Ploomes sandbox API, to compare CustomerX against."""

    def __init__(self, server: PloomesSandbox) -> None:
        self.http = httpx.Client(base_url=server.url, headers={"User-Key": server.user_key})

    def custom(self, entity_set: str, record_id: int, fields: dict[str, str]) -> dict[str, str]:
        record = self.http.get(f"/{entity_set}({record_id})", params={"$expand": "OtherProperties"}).json()
        out = {}
        for item in record["value"][0]["OtherProperties"]:
            text = expected_text(item) if item["FieldKey"] in fields else None
            if text is not None:
                out[fields[item["FieldKey"]]] = text
        return out


def held_attributes(record: dict[str, Any]) -> dict[str, str]:
    """The attributes that hold a value (an emptied one is sent as `""`, customerx-api.md §8.6)."""
    return {
        a["name"]: a["value"] for a in record.get("custom_attributes") or [] if a["value"] not in (None, "")
    }


@pytest.fixture
def account(tmp_path: Path) -> Iterator[tuple[PloomesSandbox, CustomerXSandbox]]:
    with (
        PloomesSandbox(
            PloomesDataset(persons=500, seed=19), user_key=SECRET_KEY, requests_per_minute=60_000, burst=1000
        ) as ploomes,
        CustomerXSandbox(
            token=CX_TOKEN, requests_per_minute=60_000, burst=1000, state_file=tmp_path / "cx.json"
        ) as customerx,
    ):
        yield ploomes, customerx


def sync_twice(path: str, customerx: CustomerXSandbox) -> None:
    """Sync the windows, then again: the second pass must not write."""
    assert main(["sync", path, "--window", WINDOWS]) == 0
    writes = len(customerx.writes)
    assert writes > 0
    assert main(["sync", path, "--window", WINDOWS]) == 0
    assert customerx.writes[writes:] == []


def write(tmp_path: Path, name: str, body: str, auth_scheme: str = "raw") -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        name: {name}
        ploomes:
          requests_per_minute: 6000
          page_size: 100
        customerx:
          requests_per_minute: 6000
          auth_scheme: {auth_scheme}
        sync:
          start: "2026-11-01"
        quality:
          max_rejected_ratio: 0.95
        """)
        + body
    )
    return str(load_mapping(path).source_path)


def test_b2c_persons_as_clients_with_cpf_bearer_token_notes_only_and_contact_custom_fields(
    home, tmp_path, account, monkeypatch
):
    ploomes, customerx = account
    customerx.auth_schemes = ("bearer",)  # a raw token would be refused: proves the scheme is used
    path = write(
        tmp_path,
        "b2c",
        "clients:\n  source: persons\ncontacts:\n  source: persons\ncontracts:\n  source: none\n"
        "timeline: [notes]\nidentifiers: [cnpj_cpf, email]\ncustom_fields:\n"
        + _custom_block("contacts", CONTACT_FIELDS),
        auth_scheme="bearer",
    )
    point_at(monkeypatch, ploomes, customerx)
    sync_twice(path, customerx)

    records = customerx.store.records
    assert records["clients"] and records["contracts"] == {}
    assert all(len(c.get("cnpj_cpf") or "") in (0, 11) for c in records["clients"].values())  # CPFs only
    assert {c.get("cnpj_cpf") for c in records["clients"].values()} - {None}  # and some are there
    assert {t["title"] for t in records["timelines"].values()} == {"Nota"}  # notes, nothing else
    reader = PloomesReader(ploomes)
    contacts = list(records["contacts"].values())
    assert len(contacts) > 20
    for contact in contacts:  # each person is a contact of its own client
        assert contact["external_id_client"] == contact["external_id_contact"]
        expected = reader.custom("Contacts", int(contact["external_id_contact"]), CONTACT_FIELDS)
        assert held_attributes(contact) == expected, contact["external_id_contact"]
    kinds = {k for c in contacts for k in held_attributes(c)}
    assert kinds == set(CONTACT_FIELDS.values())  # every type arrived somewhere, none blanked


def test_b2b_org_contacts_product_lines_custom_code_and_contract_custom_fields(
    home, tmp_path, account, monkeypatch
):
    ploomes, customerx = account
    code_key = field_key("contact", 0x0D)  # "Código ERP", a text custom field
    path = write(
        tmp_path,
        "b2b",
        "clients:\n  source: organizations\ncontacts:\n  source: organizations\n"
        "contracts:\n  source: deal_products\ntimeline: [activities, attachments]\n"
        f"identifiers: [external_code, cnpj_cpf, email]\nexternal_code_field: {code_key}\ncustom_fields:\n"
        + _custom_block("clients", CONTACT_FIELDS)
        + _custom_block("contracts", DEAL_FIELDS),
    )
    point_at(monkeypatch, ploomes, customerx)
    sync_twice(path, customerx)

    records = customerx.store.records
    reader = PloomesReader(ploomes)
    clients = list(records["clients"].values())
    assert clients
    for client in clients:
        expected = reader.custom("Contacts", int(client["external_id_client"]), CONTACT_FIELDS)
        assert held_attributes(client) == expected
    contacts = list(records["contacts"].values())
    assert contacts and all(c["external_id_contact"] == f"org-{c['external_id_client']}" for c in contacts)
    contracts = list(records["contracts"].values())
    assert contracts and all(
        "-order-" in c["external_id_contract"] or "-quote-" in c["external_id_contract"] for c in contracts
    )
    for contract in contracts:
        deal = int(contract["external_id_contract"].split("-")[0])
        assert held_attributes(contract) == reader.custom("Deals", deal, DEAL_FIELDS)
    assert {k for c in contracts for k in held_attributes(c)} == set(DEAL_FIELDS.values())
    titles = {t["title"] for t in records["timelines"].values()}
    assert titles and "Nota" not in titles  # activities and attachments only
    with duckdb.connect(str(database_path(home, "b2b")), read_only=True) as con:
        codes = con.execute("select count(*) from b2b.stg_clients where external_code like 'ERP%'").fetchall()
    assert codes[0][0] > 0  # the external code came from the custom field


def test_clients_contacts_and_contracts_from_won_deals(home, tmp_path, account, monkeypatch):
    ploomes, customerx = account
    path = write(
        tmp_path,
        "deals_only",
        "clients:\n  source: deals\ncontacts:\n  source: deals\ncontracts:\n  source: won_deals\ntimeline: []\n",
    )
    point_at(monkeypatch, ploomes, customerx)
    sync_twice(path, customerx)
    records = customerx.store.records
    reader = PloomesReader(ploomes)
    assert records["contracts"]
    for contract in records["contracts"].values():
        deal = reader.http.get(f"/Deals({contract['external_id_contract']})").json()["value"][0]
        assert deal["StatusId"] == 2  # only won deals become contracts
    with duckdb.connect(str(database_path(home, "deals_only")), read_only=True) as con:
        aliases = dict(con.execute("select external_id, aliases from deals_only.stg_clients").fetchall())
    for contract in records["contracts"].values():
        contact = str(
            reader.http.get(f"/Deals({contract['external_id_contract']})").json()["value"][0]["ContactId"]
        )
        client = contract["external_id_client"]
        assert contact == client or contact in aliases[client].split(
            ","
        )  # the deal's contact, or its survivor
    assert records["timelines"] == {}
