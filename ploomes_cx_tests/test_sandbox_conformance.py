"""The sandboxes answer as the specs' text says, section by section, over raw HTTP.

These tests never go through our clients: they hold the sandboxes to ploomes-api.md and
customerx-api.md, so a shape our code happens to like but the real API does not send (a field at
the wrong level, only the filled value slot) fails here instead of hiding behind a green suite.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from ploomes_cx.sandbox import CustomerXSandbox, PloomesDataset, PloomesSandbox
from ploomes_cx.sandbox.readings import READINGS
from ploomes_cx_tests.spec import VALUE_SLOTS

REFERENCE_PAIRS = [
    {f"{p}ValueId", f"{p}ValueName"} for p in ("Object", "User", "Product", "Attachment", "Contact")
]
GUID_KEY = re.compile(r"^(contact|deal)_[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")


@pytest.fixture(scope="module")
def pl() -> Iterator[httpx.Client]:
    with (
        PloomesSandbox(
            PloomesDataset(persons=300, seed=21), requests_per_minute=60_000, burst=1000
        ) as server,
        httpx.Client(base_url=server.url, headers={"User-Key": server.user_key}) as client,
    ):
        yield client


# ---- ploomes-api.md ----------------------------------------------------------------------------
def test_ploomes_1_user_key_on_every_request_and_value_arrays(pl):
    assert httpx.get(f"{pl.base_url}/Account").status_code == 401
    body = pl.get("/Account", params={"$top": "1", "$select": "Id"}).json()
    assert "@odata.context" in body and isinstance(body["value"], list)
    lower = httpx.get(f"{pl.base_url}/Account", headers={"user-key": pl.headers["User-Key"]})
    assert lower.status_code == 200  # S13 sends the header in lower case
    deal = pl.get("/Deals").json()["value"][0]
    by_key = pl.get(f"/Deals({deal['Id']})").json()
    assert [d["Id"] for d in by_key["value"]] == [deal["Id"]]  # a GET by key answers a list too
    assert pl.get("/Deals(1)").status_code == 404
    key = pl.get("/Fields").json()["value"][-1]["Key"]
    assert pl.get(f"/Fields('{key}')").json()["value"][0]["Key"] == key


def test_ploomes_2_query_options(pl):
    rows = pl.get("/Contacts", params={"$filter": "TypeId eq 2 and Id gt 1100", "$select": "Id,Name"}).json()
    assert rows["value"] and all(set(r) == {"Id", "Name"} and r["Id"] > 1100 for r in rows["value"])
    plain = pl.get("/Contacts", params={"$top": "1"}).json()["value"][0]
    assert "OtherProperties" not in plain and "Phones" not in plain  # navigations only when expanded
    expanded = pl.get("/Contacts", params={"$top": "1", "$expand": "Phones,OtherProperties"}).json()
    assert {"Phones", "OtherProperties"} <= set(expanded["value"][0])
    counted = pl.get("/Contacts", params={"$top": "0", "$count": "true"}).json()
    assert counted["value"] == [] and counted["@odata.count"] > 300


def test_ploomes_3_page_cap_and_keyset_paging(pl):
    assert len(pl.get("/Contacts", params={"$top": "1000"}).json()["value"]) == 300
    first = pl.get("/Contacts", params={"$orderby": "Id", "$top": "5"}).json()["value"]
    after = pl.get(
        "/Contacts", params={"$filter": f"Id gt {first[-1]['Id']}", "$orderby": "Id", "$top": "5"}
    ).json()["value"]
    assert after[0]["Id"] > first[-1]["Id"]


def test_ploomes_5_dates_with_and_without_offset():
    with PloomesSandbox(PloomesDataset(persons=50), date_offsets=False) as server:
        text = httpx.get(f"{server.url}/Deals", headers={"User-Key": server.user_key}).json()["value"][0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", text["LastUpdateDate"])
    with PloomesSandbox(PloomesDataset(persons=50)) as server:
        text = httpx.get(f"{server.url}/Deals", headers={"User-Key": server.user_key}).json()["value"][0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", text["LastUpdateDate"])


def test_ploomes_6_fields_carry_their_type_as_a_navigation(pl):
    bare = pl.get("/Fields").json()["value"]
    assert bare and all("Type" not in f and "NativeType" not in f and "OptionsTable" not in f for f in bare)
    fields = pl.get("/Fields", params={"$expand": "Type,OptionsTable($expand=Options)"}).json()["value"]
    for f in fields:
        assert {"Id", "Key", "Name", "EntityId", "TypeId", "Type"} <= set(f)
        assert set(f["Type"]) == {"Id", "Name", "NativeType"} and f["Type"]["Id"] == f["TypeId"]
        assert f["Type"]["NativeType"] in {"String", "BigString", "Integer", "Decimal", "DateTime", "Bool"}
        assert "NativeType" not in f  # the type is a navigation, not a top-level field
    options = [f for f in fields if f["TypeId"] == 7]
    assert options and all(o["OptionsTable"]["Options"][0].keys() == {"Id", "Name"} for o in options)
    natives = {f["Type"]["NativeType"] for f in fields if GUID_KEY.match(f["Key"])}
    assert natives == {"String", "BigString", "Integer", "Decimal", "DateTime", "Bool"}  # every type


@pytest.mark.parametrize("entity", ["Contacts", "Deals"])
def test_ploomes_7_other_properties_send_every_slot_unused_ones_null(pl, entity):
    rows = pl.get(f"/{entity}", params={"$expand": "OtherProperties", "$top": "50"}).json()["value"]
    items = [item for r in rows for item in r["OtherProperties"]]
    assert items
    for item in items:
        assert GUID_KEY.match(item["FieldKey"]) and isinstance(item["FieldId"], int)
        assert set(item) - {"FieldKey", "FieldId"} == VALUE_SLOTS
        filled = {k for k in VALUE_SLOTS if item[k] is not None}
        assert len(filled) <= 1 or filled in REFERENCE_PAIRS  # one typed slot, or a reference's id + name
    assert any(all(item[k] is None for k in VALUE_SLOTS) for item in items)  # empty fields exist too


def test_ploomes_7_the_filled_slot_only_shape_is_available():
    with PloomesSandbox(PloomesDataset(persons=50, all_slots=False)) as server:
        row = httpx.get(
            f"{server.url}/Contacts",
            params={"$expand": "OtherProperties"},
            headers={"User-Key": server.user_key},
        ).json()["value"][0]
    assert all(len(set(i) & VALUE_SLOTS) <= 2 for i in row["OtherProperties"])


def test_ploomes_8_product_lines_discount_is_a_percent(pl):
    orders = pl.get("/Orders", params={"$expand": "Products($expand=Product($select=Id,Name,Code))"}).json()
    lines = [line for o in orders["value"] for line in o["Products"]]
    assert lines
    for line in lines:
        assert {"Id", "OrderId", "DealId", "ProductId", "Quantity", "UnitPrice", "Discount", "Total"} <= set(
            line
        )
        expected = line["Quantity"] * line["UnitPrice"] * (1 - line["Discount"] / 100)
        assert line["Total"] == pytest.approx(expected, abs=0.01)


def test_ploomes_9_last_update_date_windows(pl):
    flt = "LastUpdateDate ge 2026-11-02T00:00:00-03:00 and LastUpdateDate le 2026-11-02T23:59:59-03:00"
    rows = pl.get("/Deals", params={"$filter": flt}).json()["value"]
    assert rows and all(r["LastUpdateDate"].startswith("2026-11-02") for r in rows)


def test_ploomes_9_deleted_records_vanish_and_deleted_deals_are_listed_with_their_date():
    with (
        PloomesSandbox(PloomesDataset(persons=60, seed=3), requests_per_minute=60_000, burst=1000) as server,
        httpx.Client(base_url=server.url, headers={"User-Key": server.user_key}) as client,
    ):
        ids = [r["Id"] for r in client.get("/Deals", params={"$select": "Id"}).json()["value"]]
        org = client.get("/Contacts", params={"$select": "Id", "$top": "1"}).json()["value"][0]["Id"]
        for entity, record in (("deals", ids[0]), ("contacts", org)):
            assert client.post("/_sandbox/delete", json={"entity": entity, "id": record}).status_code == 200
        listed = client.get("/Deals", params={"$select": "Id", "$orderby": "Id"}).json()["value"]
        assert [r["Id"] for r in listed] == ids[1:] and all(set(r) == {"Id"} for r in listed)
        assert client.get(f"/Contacts({org})").status_code == 404
        deleted = client.get(
            "/Deals/GetDeletedDeals", params={"$filter": "LastUpdateDate ge 2026-01-01T00:00:00-03:00"}
        ).json()["value"]
        assert [d["Id"] for d in deleted] == [ids[0]] and deleted[0]["LastUpdateDate"] > "2026-11"
        later = client.get(
            "/Deals/GetDeletedDeals", params={"$filter": "LastUpdateDate ge 2099-01-01T00:00:00-03:00"}
        ).json()["value"]
        assert later == []


def _readings_server(reading: str, value: str) -> PloomesSandbox:
    return PloomesSandbox(
        PloomesDataset(persons=60, seed=5), requests_per_minute=60_000, burst=1000, readings={reading: value}
    )


@pytest.mark.parametrize("value", ["in_list", "by_id_only"])
def test_ploomes_6_attachments_url_comes_from_attachments_by_id_and_lists_may_omit_it(value):
    """ploomes-api.md §6: "the expand may omit `Url` [...] ⇒ use `/Attachments?$filter=DealId eq N`
    (or `ContactId`) and `/Attachments(id)` for `Url`" (C [S6]); reading `attachments_url`."""
    with (
        _readings_server("attachments_url", value) as server,
        httpx.Client(base_url=server.url, headers={"User-Key": server.user_key}) as client,
    ):
        listed = client.get("/Attachments", params={"$orderby": "Id", "$top": "20"}).json()["value"]
        some = listed[0]
        by_contact = client.get("/Attachments", params={"$filter": f"ContactId eq {some['ContactId']}"})
        by_id = client.get(f"/Attachments({some['Id']})").json()["value"]
    assert listed and {"Id", "ContactId", "DealId", "CreateDate", "ContentType"} <= set(some)
    assert some["Name"] == some["FileName"]  # `Name`/`FileName`
    assert [a["Id"] for a in by_id] == [some["Id"]]  # `/Attachments(id)` is served, as a value list
    assert by_id[0]["Url"].startswith("https://")  # and always carries the link
    in_lists = [a for a in [*listed, *by_contact.json()["value"]] if "Url" in a]
    if value == "in_list":
        assert len(in_lists) == len(listed) + len(by_contact.json()["value"])
    else:
        assert in_lists == []  # no list answer has it, filtered or not


@pytest.mark.parametrize("value", ["pt", "en", "renamed"])
def test_ploomes_6_field_type_names_are_display_names_and_the_structure_stays(value):
    """ploomes-api.md §6: `Type` `{Id, Name, NativeType}` [...] Known TypeIds: 7 = option list
    [...] others: resolve via `/Fields?$expand=Type` at runtime; reading `field_type_names` (the
    names are the account's language, or anything else: the Id, NativeType and options stay)."""
    expand = {"$expand": "Type,OptionsTable($expand=Options)"}
    with _readings_server("field_type_names", value) as server:
        fields = httpx.get(f"{server.url}/Fields", params=expand, headers={"User-Key": server.user_key})
    with _readings_server("field_type_names", "pt") as server:
        pt = httpx.get(f"{server.url}/Fields", params=expand, headers={"User-Key": server.user_key})
    names = {f["TypeId"]: f["Type"]["Name"] for f in fields.json()["value"]}
    assert names[9] == {"pt": "Usuário", "en": "User", "renamed": "Tipo 9"}[value]
    assert names[7] == {"pt": "Lista de opções", "en": "Option list", "renamed": "Tipo 7"}[value]

    def structure(body: dict) -> list:
        return [{**f, "Type": {**f["Type"], "Name": None}} for f in body["value"]]

    assert structure(fields.json()) == structure(pt.json())  # only the names differ


# ---- customerx-api.md --------------------------------------------------------------------------
@pytest.fixture
def cxs() -> Iterator[CustomerXSandbox]:
    with CustomerXSandbox(requests_per_minute=60_000, burst=1000) as server:
        yield server


@pytest.fixture
def cx(cxs: CustomerXSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cxs.url, headers={"Authorization": cxs.token}) as client:
        yield client


def _client(cx: httpx.Client, ext: str, **extra) -> dict:
    r = cx.post("/clients", json={"external_id_client": ext, "company_name": f"Empresa {ext}", **extra})
    assert r.status_code in (200, 201), r.text
    return r.json()


def test_customerx_2_raw_token_or_bearer_else_401(cxs, cx):
    assert cx.get("/clients").status_code == 200
    assert (
        httpx.get(f"{cxs.url}/clients", headers={"Authorization": f"Bearer {cxs.token}"}).status_code == 200
    )
    assert httpx.get(f"{cxs.url}/clients").status_code == 401
    assert httpx.get(f"{cxs.url}/clients", headers={"Authorization": "nope"}).status_code == 401


def test_customerx_3_bare_arrays_int_ids_money_as_strings_and_partial_put(cx):
    created = _client(cx, "A1", email="a@x.com", trading_name="A")
    assert isinstance(created["id"], int)
    assert isinstance(cx.get("/clients").json(), list)
    cx.put("/clients", params={"external_id_client": "A1"}, json={"trading_name": "Novo"})
    row = cx.get("/clients", params={"external_id_client": "A1"}).json()[0]
    assert row["trading_name"] == "Novo" and row["email"] == "a@x.com"  # only keys sent change
    cx.put("/clients", params={"external_id_client": "A1"}, json={"email": None})
    assert cx.get("/clients").json()[0]["email"] is None  # null clears
    contract = cx.post(
        "/contracts", json={"external_id_client": "A1", "external_id_contract": "K", "contract_value": 99.5}
    )
    assert contract.json()["contract_value"] == "99.50"


def test_customerx_4_twenty_per_page_with_pagination_headers(cx):
    for n in range(45):
        _client(cx, f"P{n}")
    r = cx.get("/clients", params={"page": "3", "per_page": "100"})
    assert len(r.json()) == 5
    assert (r.headers["X-Total"], r.headers["X-Pages"], r.headers["X-Page"], r.headers["X-Per-Page"]) == (
        "45",
        "3",
        "3",
        "20",
    )
    assert len(cx.get("/clients", params={"max_results": "10"}).json()) == 10


def test_customerx_5_rate_limit_headers_and_429():
    with (
        CustomerXSandbox(requests_per_minute=60, burst=2) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": server.token}) as client,
    ):
        answers = [client.get("/clients") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 429, 429]
    assert all("X-RateLimit-Remaining" in a.headers and "X-RateLimit-Reset" in a.headers for a in answers)


def test_customerx_6_errors_422_with_field_errors_and_404_for_unknown_paths(cx):
    r = cx.post("/contacts", json={"name": "Sem e-mail"})
    assert r.status_code == 422 and "email" in r.json()["errors"]
    assert cx.get("/contract-plans").status_code == 404


def test_customerx_7_updates_name_the_record_by_external_id_or_by_numeric_id(cx):
    a = _client(cx, "EXT-1")
    manual = cx.post("/clients", json={"company_name": "Feito à mão"}).json()  # no external id
    assert (
        cx.put("/clients", params={"external_id_client": "EXT-1"}, json={"trading_name": "q"}).status_code
        == 200
    )
    assert cx.put("/clients/EXT-1", json={"trading_name": "p"}).status_code == 200  # path form (S2)
    # an external id parameter is only an external id: a numeric id there is a 404
    assert cx.put("/clients", params={"external_id_client": str(manual["id"])}, json={}).status_code == 404
    assert cx.put(f"/clients/{manual['id']}", json={}).status_code == 200  # the path takes either (§7)
    assert cx.put("/clients/NOPE", json={}).status_code == 404
    by_id = cx.put("/clients", params={"id": str(manual["id"])}, json={"external_id_client": "EXT-2"})
    assert by_id.status_code == 200 and by_id.json()["external_id_client"] == "EXT-2"
    assert cx.put("/clients", params={"id": "999"}, json={}).status_code == 404
    # an external id is unique, on create and on update
    assert cx.post("/clients", json={"external_id_client": "EXT-1", "company_name": "x"}).status_code == 422
    clash = cx.put("/clients", params={"external_id_client": "EXT-2"}, json={"external_id_client": "EXT-1"})
    assert (
        clash.status_code == 422
        and cx.get("/clients", params={"external_id_client": "EXT-1"}).json()[0]["id"] == a["id"]
    )


def test_customerx_8_1_contract_status_is_derived_not_written(cx):
    _client(cx, "S1", contract_status="active_contract")
    assert cx.get("/clients").json()[0]["contract_status"] == "without_contract"
    cx.post(
        "/contracts", json={"external_id_client": "S1", "external_id_contract": "K1", "contract_value": 1}
    )
    assert cx.get("/clients").json()[0]["contract_status"] == "active_contract"


def test_customerx_8_2_contact_rules(cx):
    _client(cx, "C1")
    _client(cx, "C2")
    phone = [{"number": "(11) 98765-4321", "is_default": True, "ddi": "+55"}]
    ok = cx.post(
        "/contacts", json={"external_id_client": "C1", "name": "Ana", "email": "ana@x.com", "phones": phone}
    )
    assert ok.status_code in (200, 201)
    same_email = cx.post(
        "/contacts", json={"external_id_client": "C2", "name": "Ana 2", "email": "ANA@x.com"}
    )
    assert same_email.status_code == 422 and "email" in same_email.json()["errors"]  # unique in the account
    other_client = cx.post(
        "/contacts", json={"external_id_client": "C2", "name": "Bia", "email": "bia@x.com", "phones": phone}
    )
    assert other_client.status_code in (200, 201)  # a phone may repeat across clients
    same_client = cx.post(
        "/contacts", json={"external_id_client": "C1", "name": "Caio", "email": "caio@x.com", "phones": phone}
    )
    assert (
        same_client.status_code == 422 and "phones" in same_client.json()["errors"]
    )  # (phone, client) unique
    no_client = cx.post("/contacts", json={"external_id_client": "NONE", "name": "D", "email": "d@x.com"})
    assert no_client.status_code == 422
    moved = cx.put("/contacts", params={"id": str(ok.json()["id"])}, json={"external_id_client": "C2"})
    assert moved.status_code == 422 and "external_id_client" in moved.json()["errors"]  # cannot be changed


def test_customerx_8_3_and_8_4_contracts_and_timelines_need_a_client(cx):
    assert cx.post("/contracts", json={"external_id_client": "NONE", "contract_value": 1}).status_code == 422
    assert cx.post("/timelines", json={"external_id_client": "NONE", "title": "t"}).status_code == 422
    _client(cx, "T1")
    entry = cx.post(
        "/timelines",
        json={"external_id_client": "T1", "title": "Nota", "body": "b", "operation": "client_note"},
    )
    assert entry.status_code in (200, 201) and isinstance(entry.json()["id"], int)


def test_customerx_8_6_every_custom_attribute_shape_is_accepted(cx):
    created = _client(
        cx, "CA", custom_attributes=[{"external_id": "seg", "description": "Segmento", "value": "V"}]
    )
    assert created["custom_attributes"][0]["value"] == "V"
    updated = cx.put(
        "/clients",
        params={"external_id_client": "CA"},
        json={"custom_attributes": [{"label": "seg", "value": "W"}]},
    )
    assert updated.json()["custom_attributes"] == [{"name": "seg", "label": "seg", "value": "W"}]


def test_customerx_8_4_a_timeline_entry_keeps_its_original_date(cx):
    _client(cx, "T2")
    entry = cx.post(
        "/timelines", json={"external_id_client": "T2", "title": "t", "created_at": "2026-11-02T10:00:00"}
    )
    assert entry.json()["created_at"] == "2026-11-02T10:00:00"
    client = cx.put("/clients", params={"external_id_client": "T2"}, json={"created_at": "1999-01-01"}).json()
    assert client["created_at"] != "1999-01-01"  # a client's own timestamps are the server's


def test_customerx_8_3_cancel_and_reactivate_a_contract_by_external_id(cx):
    _client(cx, "C9")
    cx.post(
        "/contracts", json={"external_id_client": "C9", "external_id_contract": "K9", "contract_value": 10}
    )
    bad_date = cx.post(
        "/cancel_contracts", json={"external_id_contract": "K9", "cancellation_date": "2026-11-02"}
    )
    assert bad_date.status_code == 422  # business dates are DD/MM/YYYY (§3)
    unknown = cx.post(
        "/cancel_contracts", json={"external_id_contract": "NONE", "cancellation_date": "02/11/2026"}
    )
    assert unknown.status_code == 404
    cancelled = cx.post(
        "/cancel_contracts", json={"external_id_contract": "K9", "cancellation_date": "02/11/2026"}
    )
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "canceled"
    client = next(c for c in cx.get("/clients").json() if c["external_id_client"] == "C9")
    assert client["contract_status"] == "contract_canceled"
    again = cx.post(
        "/contracts/reactivate_contract",
        json={"external_id_contract": "K9", "reactivation_date": "03/11/2026"},
    )
    assert again.status_code == 200 and again.json()["status"] == "active"


def test_customerx_7_delete_by_external_id_or_numeric_id(cx):
    first, second = _client(cx, "D1"), _client(cx, "D2")
    assert cx.delete("/clients", params={"external_id_client": "D1"}).status_code == 200
    assert cx.delete(f"/clients/{second['id']}").status_code == 200
    assert cx.delete("/clients", params={"external_id_client": "D1"}).status_code == 404  # gone already
    assert [c for c in cx.get("/clients").json() if c["id"] in (first["id"], second["id"])] == []


def test_customerx_8_6_custom_attributes_are_listed_on_both_paths_only_when_the_account_lists_them(cx):
    for path in ("/custom_attributes", "/clients/custom_attributes"):
        assert cx.get(path).status_code == 404  # an account whose API does not list them
    with (
        CustomerXSandbox(requests_per_minute=60_000, burst=1000, custom_attributes=["segmento"]) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": server.token}) as client,
    ):
        for path in ("/custom_attributes", "/clients/custom_attributes"):
            assert client.get(path).json() == [{"id": 1, "label": "segmento", "name": "segmento"}]


def test_customerx_8_4_a_timeline_entry_can_be_deleted_by_its_id(cx):
    _client(cx, "T1")
    entry = cx.post("/timelines", json={"external_id_client": "T1", "title": "Nota", "body": "x"}).json()
    assert cx.delete(f"/timelines/{entry['id']}").status_code == 200
    assert all(t["id"] != entry["id"] for t in cx.get("/timelines").json())


def test_customerx_8_list_filters_are_the_ones_the_spec_lists_and_others_are_ignored(cxs, cx):
    """§8.1: clients by external_id_client, cnpj_cpf, company_name, trading_name; §8.2: contacts by
    client_id, external_id_client, email; contracts and timelines list no filter. A parameter the
    spec does not list is ignored, so the whole list answers."""
    a = _client(cx, "F1", cnpj_cpf="11222333000181", email="a@x.com")
    _client(cx, "F2", email="b@x.com")
    # a document typed with its mask in the UI (the API itself takes digits only)
    next(c for c in cxs.store.records["clients"].values() if c["external_id_client"] == "F2")["cnpj_cpf"] = (
        "11.444.777/0001-61"
    )
    assert [c["id"] for c in cx.get("/clients", params={"cnpj_cpf": "11222333000181"}).json()] == [a["id"]]
    assert (
        cx.get("/clients", params={"cnpj_cpf": "11444777000161"}).json() == []
    )  # stored masked: exact match
    assert len(cx.get("/clients", params={"email": "a@x.com"}).json()) == 2  # no e-mail filter on clients
    for n, client in enumerate(("F1", "F2")):
        contact = {"external_id_client": client, "name": f"C{n}", "email": f"Pessoa{n}@X.com"}
        contact |= {"external_id_contact": f"P{n}", "document": "52998224725"}
        assert cx.post("/contacts", json=contact).status_code in (200, 201)
        contract = {"external_id_client": client, "external_id_contract": f"K{n}", "contract_value": 1}
        assert cx.post("/contracts", json=contract).status_code in (200, 201)
    emails = [c["email"] for c in cx.get("/contacts", params={"email": "pessoa0@x.com"}).json()]
    assert [e.lower() for e in emails] == ["pessoa0@x.com"]
    assert [
        c["external_id_contact"] for c in cx.get("/contacts", params={"external_id_client": "F2"}).json()
    ] == ["P1"]
    for path, unlisted in (
        ("/contacts", {"external_id_contact": "P0"}),
        ("/contacts", {"document": "52998224725"}),
        ("/contracts", {"external_id_contract": "K0"}),
    ):
        answer = cx.get(path, params=unlisted)
        assert len(answer.json()) == 2 and answer.headers["X-Total"] == "2", (path, unlisted)


def test_customerx_8_1_clients_filter_by_id_contract_status_and_dates(cxs, cx):
    """§8.1 also lists `id` and `contract_status` (LOW) and `created_at` / `updated_at` as
    YYYY-MM-DD (C): each selects, and `contract_status` filters on the derived value."""
    a = _client(cx, "D1")
    b = _client(cx, "D2")
    cx.post(
        "/contracts", json={"external_id_client": "D2", "external_id_contract": "K1", "contract_value": 1}
    )
    assert [c["id"] for c in cx.get("/clients", params={"id": str(b["id"])}).json()] == [b["id"]]
    active = cx.get("/clients", params={"contract_status": "active_contract"}).json()
    assert [c["external_id_client"] for c in active] == ["D2"]
    without = cx.get("/clients", params={"contract_status": "without_contract"}).json()
    assert [c["id"] for c in without] == [a["id"]]
    next(c for c in cxs.store.records["clients"].values() if c["id"] == a["id"])["updated_at"] = (
        "2026-01-05T10:00:00Z"
    )
    since = cx.get("/clients", params={"updated_at": "2026-06-01"}).json()
    assert [c["external_id_client"] for c in since] == ["D2"]
    assert len(cx.get("/clients", params={"updated_at": "2026-01-05"}).json()) == 2


FORM_SWITCHES = {  # reading -> (spec words, the form it refuses, a form it always takes)
    "id_in": (
        "ploomes-api.md §2: operators seen `eq`, `ne`, `gt`, `ge`, `le`, `and` [...] (`in` not among them)",
        ("/Contacts", {"$filter": "Id in (1000,1001)"}),
        ("/Contacts", {"$filter": "Id eq 1000"}),
    ),
    "or_filter": (
        "ploomes-api.md §2: `lt`, `or`, `any()` lambdas — I (standard OData)",
        ("/Contacts", {"$filter": "Id eq 1000 or Id eq 1001"}),
        ("/Contacts", {"$filter": "Id ge 1000 and Id le 1001"}),
    ),
    "orders_quotes_last_update": (
        "ploomes-api.md §9: [LastUpdateDate] exists on Contacts, Deals, Tasks, InteractionRecords — C [S3]",
        ("/Orders", {"$filter": "LastUpdateDate ge 2026-11-01T00:00:00-03:00"}),
        ("/Quotes", {"$filter": "Deal/Id eq 500001"}),
    ),
    "attachments_unscoped": (
        "ploomes-api.md §2: unscoped `/Attachments` listings are slow or time out — C [S6][S8]",
        ("/Attachments", {"$filter": "CreateDate ge 2026-11-01T00:00:00-03:00", "$orderby": "Id"}),
        ("/Attachments", {"$filter": "Id gt 0 and Id le 60000010"}),
    ),
    "deleted_deals_paging": (
        "ploomes-api.md §9: `GET /Deals/GetDeletedDeals?$filter=LastUpdateDate ge <ts>` — C [S2]",
        (
            "/Deals/GetDeletedDeals",
            {"$filter": "LastUpdateDate ge 2026-01-01T00:00:00-03:00", "$orderby": "Id"},
        ),
        ("/Deals/GetDeletedDeals", {"$filter": "LastUpdateDate ge 2026-01-01T00:00:00-03:00"}),
    ),
    "unknown_select": (
        "ploomes-api.md §4: codes 400 (bad OData / field) — C for handling in [S4]",
        ("/Deals", {"$select": "Id,NoSuchField", "$top": "1"}),
        ("/Deals", {"$select": "Id,LastUpdateDate", "$top": "1"}),
    ),
}


@pytest.mark.parametrize(("reading", "value"), [(r, v) for r in FORM_SWITCHES for v in READINGS[r].values])
def test_ploomes_query_form_switches_refuse_only_their_form(reading, value):
    """Each switch plays the spec sentence in `FORM_SWITCHES` (and quoted in `readings.py`): the
    default takes the form; the alternative answers it 400 (or 504, a listing timed out), while the
    confirmed form it names stays served."""
    words, (path, refused), (safe_path, safe) = FORM_SWITCHES[reading]
    assert words.split(":")[0].split("§")[1] in READINGS[reading].spec
    with (
        _readings_server(reading, value) as server,
        httpx.Client(base_url=server.url, headers={"User-Key": server.user_key}) as client,
    ):
        answer = client.get(path, params=refused)
        kept = client.get(safe_path, params=safe)
    assert kept.status_code == 200 and isinstance(kept.json()["value"], list)
    if value == READINGS[reading].default:
        assert answer.status_code == 200
    else:
        assert answer.status_code == (504 if value == "timeout" else 400)
        assert answer.json()["error"]["message"]
