"""Connecting an account (§5): `check` against the sandboxes over real HTTP, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from ploomes_cx.cli import main
from ploomes_cx.ploomes.catalogue import is_custom
from ploomes_cx.sandbox import CustomerXSandbox
from ploomes_cx.sandbox.ploomes_fields import fields_catalogue
from ploomes_cx_tests.conftest import CX_TOKEN, SECRET_KEY, point_at, write_mapping

SANDBOX_MAPPING = str(Path(__file__).resolve().parent.parent / "mappings" / "sandbox.yaml")


def test_check_passes_on_the_sandbox_mapping_and_writes_nothing(
    home, ploomes, customerx, monkeypatch, capsys
):
    point_at(monkeypatch, ploomes, customerx)
    assert main(["check", SANDBOX_MAPPING]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and "result: ready to sync" in out and "7 mapped custom field(s)" in out
    assert not home.exists()  # no state folder, no pacing file, no database
    assert customerx.writes == [] and len(ploomes.requests) <= 3
    assert SECRET_KEY not in out and CX_TOKEN not in out


def test_check_names_the_variable_of_a_refused_key_and_exits_3(home, ploomes, customerx, monkeypatch, capsys):
    point_at(monkeypatch, ploomes, customerx)
    monkeypatch.setenv("PLOOMES_USER_KEY", "not-the-key")
    assert main(["check", SANDBOX_MAPPING]) == 3
    out = capsys.readouterr().out
    assert "FAIL  Ploomes: Ploomes refused the key in $PLOOMES_USER_KEY (HTTP 401" in out
    assert "not-the-key" not in out
    assert "ok    CustomerX" in out  # the other API is still checked


def test_check_names_a_missing_variable_and_exits_3(home, ploomes, customerx, monkeypatch, capsys):
    point_at(monkeypatch, ploomes, customerx)
    monkeypatch.delenv("CUSTOMERX_TOKEN")
    assert main(["check", SANDBOX_MAPPING]) == 3
    out = capsys.readouterr().out
    assert "$CUSTOMERX_TOKEN not set" in out and "ok    Ploomes" in out


def test_check_names_an_unknown_custom_field_and_exits_2(
    home, tmp_path, ploomes, customerx, monkeypatch, capsys
):
    point_at(monkeypatch, ploomes, customerx)
    path = write_mapping(tmp_path, "typo")
    path.write_text(path.read_text().replace("00000000000A", "0000000000FF"))
    assert main(["check", str(path)]) == 2
    out = capsys.readouterr().out
    assert (
        "FAIL  custom_fields.clients[0].ploomes: 'contact_0A1B2C3D-0000-0000-0000-0000000000FF' is not a field"
        in out
    )
    assert f"ploomes-cx fields {path}" in out


def test_check_compares_attribute_names_with_those_customerx_lists(
    home, tmp_path, ploomes, monkeypatch, capsys
):
    with CustomerXSandbox(token=CX_TOKEN, custom_attributes=["segmento", "plano"]) as customerx:
        point_at(monkeypatch, ploomes, customerx)
        path = write_mapping(tmp_path, "attrs")
        path.write_text(path.read_text().replace("customerx: segmento", "customerx: segment"))
        assert main(["check", str(path)]) == 2
    out = capsys.readouterr().out
    assert "FAIL  custom_fields.clients[0].customerx: 'segment' is not a custom attribute" in out
    assert "plano, segmento" in out


def test_check_reports_a_mapping_error_with_exit_2(home, tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nclients:\n  source: companies\n")
    assert main(["check", str(path)]) == 2
    assert "FAIL  mapping:" in capsys.readouterr().out


def _sandbox_custom_fields() -> dict[str, dict]:
    return {f["Key"]: f for f in fields_catalogue() if is_custom(f)}


def test_fields_lists_every_custom_field_and_a_block_that_check_accepts(
    home, tmp_path, ploomes, customerx, monkeypatch, capsys
):
    point_at(monkeypatch, ploomes, customerx)
    assert main(["fields", SANDBOX_MAPPING, "--sample", "50"]) == 0
    out = capsys.readouterr().out
    listing, block = out.split("custom_fields:\n")
    for key, field in _sandbox_custom_fields().items():
        row = next(line for line in listing.splitlines() if line.endswith(key))
        assert field["Type"]["NativeType"] in row and field["Name"] in row and "/50" in row
    assert "options: Varejo, Indústria" in listing
    mapping = tmp_path / "picked.yaml"
    base = write_mapping(tmp_path, "picked").read_text().split("custom_fields:")[0]
    mapping.write_text(base + "custom_fields:\n" + block)
    assert main(["check", str(mapping)]) == 0
    assert "14 mapped custom field(s)" in capsys.readouterr().out


def test_fields_json_for_one_entity_counts_what_the_sampled_records_fill(
    home, ploomes, customerx, monkeypatch, capsys
):
    point_at(monkeypatch, ploomes, customerx)
    assert main(["fields", SANDBOX_MAPPING, "--entity", "deals", "--sample", "40", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    deal_fields = {k for k, f in _sandbox_custom_fields().items() if f["EntityId"] == 2}
    assert {r["key"] for r in rows} == deal_fields and all(r["entity"] == "deals" for r in rows)
    with httpx.Client(base_url=ploomes.url, headers={"User-Key": SECRET_KEY}) as http:
        deals = http.get(
            "/Deals", params={"$top": "40", "$orderby": "LastUpdateDate desc", "$expand": "OtherProperties"}
        ).json()["value"]
    assert len(deals) == 40  # the same 40 most recently changed deals, read without our code
    for r in rows:
        field = _sandbox_custom_fields()[r["key"]]
        slot = "ObjectValueName" if field["TypeId"] == 7 else f"{field['Type']['NativeType']}Value"  # §6
        items = [i for d in deals for i in d["OtherProperties"] if i["FieldKey"] == r["key"]]
        assert r["filled"] == sum(i.get(slot) is not None for i in items) and r["sampled"] == 40
