"""Staging on hand-made raw records in a real DuckDB file, and on the sandbox through Dagster."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pytest
from stdnum.br import cnpj as std_cnpj
from stdnum.br import cpf as std_cpf

from ploomes_cx.mapping import Mapping, parse_mapping
from ploomes_cx.ploomes.custom_fields import CatalogueError
from ploomes_cx.raw.frames import fields_frame, raw_frame
from ploomes_cx.runner import run_windows
from ploomes_cx.runtime.duckdb_io import database_path
from ploomes_cx.sandbox.brazil import cnpj_digits, cpf_digits, format_cnpj, format_cpf
from ploomes_cx.staging.build import build_staging
from ploomes_cx.staging.checks import duplicate_identifiers
from ploomes_cx.staging.schemas import MODELS
from ploomes_cx_tests.conftest import point_at
from ploomes_cx_tests.spec import VALUE_SLOTS

SP = ZoneInfo("America/Sao_Paulo")
CNPJ_A = cnpj_digits("112223330001")
CNPJ_B = cnpj_digits("998887770001")
CPF_1 = cpf_digits("123456789")


def window(day: int) -> dg.TimeWindow:
    return dg.TimeWindow(dt.datetime(2026, 11, day, tzinfo=SP), dt.datetime(2026, 11, day + 1, tzinfo=SP))


def stamp(day: int, hour: int = 12) -> str:
    return dt.datetime(2026, 11, day, hour, tzinfo=SP).isoformat()


def org(i: int, name: str, register: str = "", email: str | None = None, day: int = 2, **extra: Any) -> dict:
    return {
        "Id": i,
        "TypeId": 1,
        "Name": name,
        "Register": register,
        "Email": email,
        "Key": None,
        "LastUpdateDate": stamp(day, extra.pop("hour", 12)),
        "Phones": [],
        "OtherProperties": [],
        **extra,
    }


def person(
    i: int,
    name: str,
    company: int | None,
    email: str | None = None,
    register: str = "",
    day: int = 2,
    **extra: Any,
) -> dict:
    return {
        "Id": i,
        "TypeId": 2,
        "Name": name,
        "Register": register,
        "Email": email,
        "CompanyId": company,
        "Key": None,
        "LastUpdateDate": stamp(day, extra.pop("hour", 12)),
        "Phones": [{"PhoneNumber": "(11) 98765-4321"}],
        "OtherProperties": [],
        **extra,
    }


class Raw:
    """Writes raw rows the way the raw assets do (same columns, same frame builder)."""

    def __init__(self, path: Path, schema: str = "t") -> None:
        self.con = duckdb.connect(str(path))
        self.schema = schema
        self.con.execute(f"create schema if not exists {schema}")

    def add(self, entity: str, day: int, records: list[dict], date_field: str = "LastUpdateDate") -> None:
        frame, outside = raw_frame(records, date_field, window(day), SP, "test-run")
        assert not outside
        table = f"{self.schema}.raw_{entity}"
        self.con.register("_rows", frame)
        self.con.execute(f"create table if not exists {table} as select * from _rows limit 0")
        self.con.execute(
            f"delete from {table} where window_start = ?", [window(day).start.replace(tzinfo=None)]
        )
        self.con.execute(f"insert into {table} by name select * from _rows")
        self.con.unregister("_rows")

    def fields(self, catalogue: list[dict]) -> None:
        """The account's field catalogue, written as the raw_fields asset writes it."""
        frame = fields_frame(catalogue, window(1), "test-run")
        self.con.register("_rows", frame)
        self.con.execute(f"create or replace table {self.schema}.raw_fields as select * from _rows")
        self.con.unregister("_rows")


def mapping(**overrides: Any) -> Mapping:
    data = {"name": "t", "timeline": [], "contracts": {"source": "none"}, **overrides}
    return parse_mapping(data, "t.yaml")


@pytest.fixture
def raw(tmp_path: Path) -> Raw:
    return Raw(tmp_path / "w.duckdb")


def by_id(frame, column="ploomes_id"):
    return {int(r[column]): r for _, r in frame.iterrows()}


def test_formatted_and_bare_cnpj_merge_and_persons_follow_the_survivor(raw):
    raw.add("organizations", 2, [org(1, "Padaria São João Ltda", format_cnpj(CNPJ_A))])
    raw.add("organizations", 3, [org(2, "PADARIA SAO JOAO LTDA", CNPJ_A, day=3)])
    raw.add("persons", 2, [person(10, "Ana", 1, "ana@x.com"), person(11, "Bia", 2, "bia@x.com")])
    staged = build_staging(raw.con, mapping(), "r1")
    assert staged.clients["ploomes_id"].tolist() == [2]  # latest change survives
    client = staged.clients.iloc[0]
    assert client["aliases"] == "1" and client["document"] == CNPJ_A and client["document_type"] == "cnpj"
    assert set(staged.contacts["client_external_id"]) == {"2"}  # Ana pointed at the merged record 1
    merged = staged.clusters[staged.clusters["kind"] == "merged"]
    assert merged["member_ids"].tolist() == ["1,2"] and merged["rule"].tolist() == ["cnpj_cpf"]


def test_invalid_check_digits_get_a_reason_and_never_reach_staging_as_a_document(raw):
    bad_cnpj = CNPJ_A[:-1] + str((int(CNPJ_A[-1]) + 1) % 10)
    raw.add("organizations", 2, [org(1, "Metalúrgica Ceará", format_cnpj(bad_cnpj)), org(2, "Outra", CNPJ_B)])
    raw.add("persons", 2, [person(10, "Ana", 1, "ana@x.com", register="123.456.789-00")])
    staged = build_staging(raw.con, mapping(), "r1")
    clients = by_id(staged.clients)
    assert clients[1]["document"] is None and clients[2]["document"] == CNPJ_B
    assert staged.contacts.iloc[0]["document"] is None
    reasons = staged.rejected.set_index("ploomes_id")
    assert reasons.loc[1, "rule"] == "document_check_digits" and reasons.loc[1, "value"] == format_cnpj(
        bad_cnpj
    )
    assert reasons.loc[1, "outcome"] == "field_cleared"
    assert reasons.loc[10, "rule"] == "document_check_digits"


def test_two_valid_cnpjs_with_one_name_are_flagged_not_merged(raw):
    raw.add(
        "organizations",
        2,
        [
            org(1, "Comércio Paraná Ltda", CNPJ_A, "fiscal@contabil.com"),
            org(2, "Comercio Parana LTDA", CNPJ_B, "fiscal@contabil.com"),
        ],
    )
    staged = build_staging(raw.con, mapping(), "r1")
    assert sorted(staged.clients["ploomes_id"]) == [1, 2]
    candidates = staged.clusters[staged.clusters["kind"] == "candidate"]
    assert candidates["member_ids"].tolist() == ["1,2"] and candidates["rule"].tolist() == [
        "same_folded_name"
    ]
    assert duplicate_identifiers(staged.clients, ["cnpj_cpf", "external_code", "email"]).empty


def test_email_case_merges_contacts_and_accents_are_kept_for_display(raw):
    raw.add("organizations", 2, [org(1, "Açaí do Norte", CNPJ_A)])
    raw.add(
        "persons",
        2,
        [
            person(10, "  José   Conceição ", 1, "Jose.C@Gmail.com", hour=9),
            person(11, "JOSE CONCEICAO", 1, "jose.c@gmail.com ", register=format_cpf(CPF_1), hour=10),
        ],
    )
    staged = build_staging(raw.con, mapping(), "r1")
    assert len(staged.contacts) == 1
    contact = staged.contacts.iloc[0]
    assert contact["ploomes_id"] == 11 and contact["aliases"] == "10"
    assert contact["email"] == "jose.c@gmail.com" and contact["document"] == CPF_1
    assert (
        staged.clients.iloc[0]["name"] == "Açaí do Norte"
        and staged.clients.iloc[0]["name_key"] == "acai do norte"
    )


def test_an_older_window_rematerialized_later_never_replaces_a_newer_version(raw):
    raw.add("organizations", 3, [org(1, "Nome Novo", CNPJ_A, day=3)])
    raw.add("organizations", 2, [org(1, "Nome Antigo", CNPJ_A, day=2)])  # written after, but older
    staged = build_staging(raw.con, mapping(), "r1")
    assert staged.clients["name"].tolist() == ["Nome Novo"]


def test_every_extracted_record_is_staged_merged_or_rejected(raw):
    raw.add(
        "organizations",
        2,
        [
            org(1, "A Ltda", CNPJ_A),
            org(2, "A Ltda", format_cnpj(CNPJ_A)),
            org(3, "", ""),
            org(4, "B", "1"),
        ],
    )
    raw.add("organizations", 3, [org(1, "A Ltda", CNPJ_A, day=3)])  # a second version is not a second record
    raw.add(
        "persons",
        2,
        [
            person(10, "Ana", 1, "ana@x.com"),
            person(11, "Sem empresa", None),
            person(12, "Órfã", 999),
            person(13, "", 4),
            person(14, "???", 1, "q@x.com"),  # a name without letters
        ],
    )
    staged = build_staging(raw.con, mapping(), "r1")
    distinct = {
        e: raw.con.execute(f"select count(distinct id) from t.raw_{e}").fetchall()[0][0]
        for e in ("organizations", "persons")
    }
    for entity, source in (("clients", "organizations"), ("contacts", "persons")):
        c = staged.counts[entity]
        assert c["extracted"] == distinct[source] == c["staged"] + c["rejected"] + c["merged"]
        assert c["staged"] == len(getattr(staged, entity))
    rejected = staged.rejected[staged.rejected["outcome"] == "rejected"]
    assert dict(zip(rejected["ploomes_id"], rejected["rule"], strict=True)) == {
        3: "name_missing",
        11: "person_without_company",
        12: "client_not_found",
        13: "name_missing",
        14: "name_no_letters",
    }
    assert staged.counts["clients"] == {"extracted": 4, "staged": 2, "merged": 1, "rejected": 1}


def test_duplicate_identifier_check_finds_what_dedupe_should_have_merged():
    import pandas as pd

    rows = pd.DataFrame(
        {
            "external_id": ["1", "2", "3", "4"],
            "document": [CNPJ_A, CNPJ_B, None, None],
            "external_code": [None, None, None, None],
            "email": ["shared@x.com", "shared@x.com", "dup@x.com", "dup@x.com"],
        }
    )
    found = duplicate_identifiers(rows, ["cnpj_cpf", "external_code", "email"])
    # two legal identities may share an accountant's e-mail; two records without documents may not
    assert found[["identifier", "value"]].values.tolist() == [["email", "dup@x.com"]]


def field(key: str, type_id: int, native: str, type_name: str = "", **extra: Any) -> dict:
    """A `/Fields` item expanded with its Type, as ploomes-api.md §6 describes it."""
    return {
        "Id": abs(hash(key)) % 10_000,
        "Key": key,
        "Name": key,
        "EntityId": 1,
        "TypeId": type_id,
        "Type": {"Id": type_id, "Name": type_name, "NativeType": native},
        **extra,
    }


SLOTS = dict.fromkeys(sorted(VALUE_SLOTS))  # every slot, as Ploomes sends an item (§7)
CATALOGUE = [
    field("contact_A", 7, "Integer", "Lista de opções", OptionsTableId=1),
    field("contact_B", 4, "Integer", "Número inteiro"),
    field("contact_C", 1, "String", "Texto"),
    field("contact_D", 5, "DateTime", "Data"),
    field("contact_E", 6, "Decimal", "Número decimal"),
    field("contact_F", 10, "Bool", "Verdadeiro ou falso"),
    field("contact_G", 2, "BigString", "Texto longo"),
    field("contact_H", 9, "Integer", "Usuário"),
    field("contact_X", 1, "String", "Texto"),
]
EVERY_TYPE = {
    "clients": [
        {"ploomes": "contact_A", "customerx": "segmento"},
        {"ploomes": "contact_B", "customerx": "funcionarios"},
        {"ploomes": "contact_C", "customerx": "codigo"},
        {"ploomes": "contact_D", "customerx": "fundacao"},
        {"ploomes": "contact_E", "customerx": "faturamento"},
        {"ploomes": "contact_F", "customerx": "ativo"},
        {"ploomes": "contact_G", "customerx": "observacoes"},
        {"ploomes": "contact_H", "customerx": "responsavel"},
    ]
}
EXPECTED = {
    "segmento": "Varejo",
    "funcionarios": 40,
    "codigo": "ERP-7",
    "fundacao": "1999-05-12",
    "faturamento": 1234.5,
    "ativo": False,
    "observacoes": "linha 1\nlinha 2",
    "responsavel": "Ana Lima",
}
FILLED = [
    ("contact_A", {"ObjectValueId": 3, "ObjectValueName": "Varejo"}),
    ("contact_B", {"IntegerValue": 40}),
    ("contact_C", {"StringValue": "ERP-7"}),
    ("contact_D", {"DateTimeValue": "1999-05-12T00:00:00-03:00"}),
    ("contact_E", {"DecimalValue": 1234.5}),
    ("contact_F", {"BoolValue": False}),
    ("contact_G", {"BigStringValue": "linha 1\nlinha 2"}),
    ("contact_H", {"UserValueId": 101, "UserValueName": "Ana Lima"}),
    ("contact_X", {"StringValue": "segredo"}),
]


@pytest.mark.parametrize(
    "shape",
    [
        # Ploomes sends every slot, the unused ones null: the regression of the blanked fields
        [{"FieldKey": k, "FieldId": 1, **SLOTS, **v} for k, v in FILLED],
        [{"FieldKey": k, **v} for k, v in FILLED],  # only the filled slot
        {
            k: next(iter(v.values())) if len(v) == 1 else v[next(s for s in v if s.endswith("Name"))]
            for k, v in FILLED
        },
    ],
    ids=["all_slots_with_nulls", "filled_slot_only", "webhook_map"],
)
def test_custom_fields_of_every_type_are_read_from_their_slot_and_typed(raw, shape):
    raw.fields(CATALOGUE)
    raw.add("organizations", 2, [org(1, "A", CNPJ_A, OtherProperties=shape)])
    staged = build_staging(raw.con, mapping(custom_fields=EVERY_TYPE), "r1")
    # typed, and only the mapped ones travel (contact_X is not mapped)
    assert json.loads(staged.clients.iloc[0]["custom_attributes"]) == EXPECTED


@pytest.mark.parametrize(
    "names",
    [
        {},  # the Portuguese names of CATALOGUE
        {1: "Text", 2: "Long text", 4: "Integer", 7: "Option list", 9: "User", 10: "True or false"},
        # names no word list knows, and a text type whose name says "contact" and "user"
        {1: "Contato do usuário", 2: "Tipo 2", 4: "Tipo 4", 7: "Tipo 7", 9: "Tipo 9", 10: "Tipo 10"},
    ],
    ids=["pt", "en", "renamed"],
)
def test_custom_field_slots_come_from_the_catalogue_structure_not_the_type_names(raw, names):
    """ploomes-api.md §6: `Type {Id, Name, NativeType}`; the name is a display name in the
    account's language, so a user field (UserValueName filled) and an option list must read the
    same whatever the types are called."""
    renamed = [
        {**f, "Type": {**f["Type"], "Name": names.get(f["TypeId"], f["Type"]["Name"])}} for f in CATALOGUE
    ]
    raw.fields(renamed)
    shape = [{"FieldKey": k, "FieldId": 1, **SLOTS, **v} for k, v in FILLED]
    raw.add("organizations", 2, [org(1, "A", CNPJ_A, OtherProperties=shape)])
    staged = build_staging(raw.con, mapping(custom_fields=EVERY_TYPE), "r1")
    assert json.loads(staged.clients.iloc[0]["custom_attributes"]) == EXPECTED


def test_an_empty_or_misfit_custom_field_is_left_out_and_a_misfit_is_listed(raw):
    raw.fields(CATALOGUE)
    props = [
        {"FieldKey": "contact_B", **SLOTS, "IntegerValue": "quarenta"},  # text in an integer field
        {"FieldKey": "contact_C", **SLOTS},  # an empty field: every slot null
    ]
    raw.add("organizations", 2, [org(1, "A", CNPJ_A, OtherProperties=props)])
    staged = build_staging(raw.con, mapping(custom_fields=EVERY_TYPE), "r1")
    assert json.loads(staged.clients.iloc[0]["custom_attributes"]) == {}
    cleared = staged.rejected[staged.rejected["rule"] == "custom_field_type"]
    assert cleared[["ploomes_id", "field", "outcome"]].values.tolist() == [
        [1, "custom_field:funcionarios", "field_cleared"]
    ]


def test_a_mapped_field_of_an_unknown_type_is_an_error_naming_it(raw):
    raw.fields([field("contact_Z", 77, "Geometry", "Mapa")])
    raw.add("organizations", 2, [org(1, "A", CNPJ_A)])
    m = mapping(custom_fields={"clients": [{"ploomes": "contact_Z", "customerx": "mapa"}]})
    with pytest.raises(CatalogueError, match=r"contact_Z.*TypeId 77.*field_type_slots"):
        build_staging(raw.con, m, "r1")
    # the mapping can say which slot such a type uses
    m = mapping(
        ploomes={"field_type_slots": {77: "StringValue"}},
        custom_fields={"clients": [{"ploomes": "contact_Z", "customerx": "mapa"}]},
    )
    raw.add(
        "organizations",
        2,
        [org(1, "A", CNPJ_A, OtherProperties=[{"FieldKey": "contact_Z", **SLOTS, "StringValue": "-23,-46"}])],
    )
    assert json.loads(build_staging(raw.con, m, "r1").clients.iloc[0]["custom_attributes"]) == {
        "mapa": "-23,-46"
    }


def test_external_code_from_a_custom_field_reads_its_typed_slot(raw):
    raw.fields(CATALOGUE)
    code = [{"FieldKey": "contact_B", **SLOTS, "IntegerValue": 777}]
    raw.add("organizations", 2, [org(1, "A", OtherProperties=code)])
    raw.add("organizations", 3, [org(2, "B", day=3, OtherProperties=code)])
    staged = build_staging(raw.con, mapping(external_code_field="contact_B"), "r1")
    assert staged.clients["external_code"].tolist() == ["777"]  # one code, one record


# at 500 persons these windows still hold clients and contacts both rejected and merged, a
# look-alike candidate and both reject rules checked (at 300 no client is rejected or merged,
# at 150 no email fails its syntax): every sum below keeps its terms (issue 29)
@pytest.mark.persons(500)
def test_sandbox_sync_stages_clean_tables_with_checks(
    home, mapping_with_timeline, ploomes, customerx, monkeypatch
):
    m = mapping_with_timeline
    point_at(monkeypatch, ploomes, customerx)
    results = run_windows(m, ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"])
    assert all(r.success for r in results), [r.errors for r in results]
    with duckdb.connect(str(database_path(home, m.name)), read_only=True) as con:
        docs = con.execute(
            f"select document, document_type from {m.name}.stg_clients where document is not null"
            f" union all select document, 'cpf' from {m.name}.stg_contacts where document is not null"
        ).fetchall()
        assert docs and all((std_cpf if t == "cpf" else std_cnpj).is_valid(d) for d, t in docs)
        counts = results[-1].counts
        for entity, table, source in (
            ("clients", "stg_clients", "raw_organizations"),
            ("contacts", "stg_contacts", "raw_persons"),
        ):
            # the window extracts and the parents fetched by Id for them
            distinct = con.execute(
                f"select count(distinct id) from (select id from {m.name}.{source} union all "
                f"select id from {m.name}.raw_dependencies where entity = '{source[4:]}' and payload is not null)"
            ).fetchall()[0][0]
            staged = con.execute(f"select count(*) from {m.name}.{table}").fetchall()[0][0]
            c = counts[entity]
            assert distinct == c["extracted"] == staged + c["rejected"] + c["merged"]
        merged_away = con.execute(
            f"select coalesce(sum(size - 1), 0) from {m.name}.duplicate_clusters where kind = 'merged'"
        ).fetchall()[0][0]
        assert merged_away == counts["clients"]["merged"] + counts["contacts"]["merged"]
        rules = dict(con.execute(f"select rule, count(*) from {m.name}.rejected group by rule").fetchall())
        assert rules.get("document_check_digits", 0) > 0 and rules.get("email_syntax", 0) > 0
    instance = dg.DagsterInstance.get()
    latest = results[-1]
    summary = latest.counts["contacts"]
    assert summary["extracted"] == summary["staged"] + summary["rejected"] + summary["merged"]
    checks = {(e.asset_key.path[-1], e.check_name): e for e in _check_evaluations(instance, latest.run_id)}
    assert checks[("stg_clients", "no_duplicate_identifiers")].passed
    assert checks[("stg_contacts", "client_exists")].passed
    assert ("duplicate_clusters", "fuzzy_candidates") in checks


def _check_evaluations(instance: dg.DagsterInstance, run_id: str) -> list[Any]:
    entries = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    return [e.dagster_event.event_specific_data for e in entries]


def test_b2c_persons_as_clients_and_contacts_keep_distinct_cluster_ids(raw):
    """Regression: clients and contacts both from persons made `persons:<id>` twice and the
    duplicate_clusters contract stopped the window; a contact custom field arrived as ''."""
    raw.fields(CATALOGUE)
    props = [{"FieldKey": "contact_B", **SLOTS, "IntegerValue": 40}]
    raw.add(
        "persons", 2, [person(10, "Ana Souza", None, "ana@x.com", format_cpf(CPF_1), OtherProperties=props)]
    )
    raw.add("persons", 3, [person(11, "ANA SOUZA", None, "ANA@X.COM", CPF_1, day=3, OtherProperties=props)])
    m = mapping(
        clients={"source": "persons"},
        identifiers=["cnpj_cpf", "email"],
        custom_fields={"contacts": [{"ploomes": "contact_B", "customerx": "idade"}]},
    )
    staged = build_staging(raw.con, m, "r1")
    assert staged.clients["ploomes_id"].tolist() == [11] and staged.clients.iloc[0]["document"] == CPF_1
    assert staged.contacts["client_external_id"].tolist() == ["11"]
    assert json.loads(staged.contacts.iloc[0]["custom_attributes"]) == {"idade": 40}
    MODELS["duplicate_clusters"].validate(staged.clusters)  # raised SchemaError before the fix
    assert sorted(staged.clusters["cluster_id"]) == ["clients:persons:11", "contacts:persons:11"]


def test_values_repeated_across_rows_are_one_string_each(raw):
    """Memory at a million rows: a document kind, and a client's external id on its contacts, are
    one shared string per value, not one per row (the values themselves are unchanged)."""
    cnpj_c = cnpj_digits("554443330001")
    raw.add("organizations", 2, [org(1, "Alfa", CNPJ_A), org(2, "Beta", CNPJ_B), org(3, "Gama", cnpj_c)])
    raw.add("persons", 2, [person(10 + n, f"Pessoa {n}", 1 + n % 2, f"p{n}@x.com") for n in range(4)])
    staged = build_staging(raw.con, mapping(), "r1")
    clients, contacts = staged.clients, staged.contacts
    assert clients["document_type"].tolist() == ["cnpj"] * 3
    assert len({id(v) for v in clients["document_type"]}) == 1
    assert sorted(contacts["client_external_id"]) == ["1", "1", "2", "2"]
    assert len({id(v) for v in contacts["client_external_id"]}) == 2


def test_a_client_its_contract_rejects_takes_its_contacts_with_it_and_no_other(raw):
    from ploomes_cx.staging.validate import apply_contracts

    raw.add("organizations", 2, [org(1, "A" * 300, CNPJ_A), org(2, "B Ltda")])  # a name over 255
    raw.add("persons", 2, [person(10, "Ana", 1, "ana@x.com"), person(11, "Bia", 2, "bia@x.com")])
    staged = build_staging(raw.con, mapping(), "r1")
    tables = apply_contracts(staged, ["clients", "contacts"], "r1")
    assert tables["clients"]["ploomes_id"].tolist() == [2]
    assert tables["contacts"]["ploomes_id"].tolist() == [11]
    rules = by_id(tables["rejected"][tables["rejected"]["entity"].str.startswith("stg_")])
    assert rules[1]["rule"].startswith("contract:") and rules[10]["rule"] == "client_rejected"
    assert staged.counts["contacts"] == {"extracted": 2, "staged": 1, "merged": 0, "rejected": 1}


def test_two_people_of_one_client_with_one_name_are_a_candidate_not_a_merge(raw):
    raw.add("organizations", 2, [org(1, "Açaí do Norte", CNPJ_A), org(2, "Outra Ltda", CNPJ_B)])
    raw.add(
        "persons",
        2,
        [
            person(10, "Ana Souza", 1, "ana@norte.com"),
            person(11, "ANA SOUZA", 1, "ana.souza@gmail.com"),
            person(12, "Ana Souza", 2, "ana@outra.com"),  # the same name at another client
        ],
    )
    staged = build_staging(raw.con, mapping(), "r1")
    assert sorted(staged.contacts["ploomes_id"]) == [10, 11, 12]
    found = staged.clusters[staged.clusters["kind"] == "candidate"]
    assert found[["member_ids", "rule", "score"]].values.tolist() == [["10,11", "same_name_same_client", 0.9]]


def test_a_look_alike_score_reads_as_a_similarity_not_a_float32(raw):
    """Issue 29: the UI showed 0.9230769348144531 for a look-alike pair."""
    raw.add(
        "organizations",
        2,
        [org(1, "Comercio Parana Alves", CNPJ_A), org(2, "Comercio Parana Alvez", CNPJ_B)],
    )
    staged = build_staging(raw.con, mapping(), "r1")
    scores = staged.clusters[staged.clusters["kind"] == "candidate"]["score"].tolist()
    assert scores and all(s == round(s, 3) and 0.9 < s < 1 for s in scores)
