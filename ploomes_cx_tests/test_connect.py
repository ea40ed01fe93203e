"""Connecting an account (§5): `check` against the sandboxes over real HTTP, through the CLI."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import httpx
import pexpect
import pytest

from ploomes_cx.cli import main
from ploomes_cx.mapping import load_mapping
from ploomes_cx.ploomes.catalogue import is_custom
from ploomes_cx.sandbox import CustomerXSandbox
from ploomes_cx.sandbox.ploomes_fields import fields_catalogue
from ploomes_cx_tests.conftest import CX_TOKEN, SECRET_KEY, point_at, write_mapping

# mostly waiting (pacing, daemons, subprocesses): one worker runs these in turn (conftest.py)
pytestmark = pytest.mark.xdist_group("waits")

CLI = str(Path(sys.executable).parent / "ploomes-cx")
SANDBOX_MAPPING = str(Path(__file__).resolve().parent.parent / "mappings" / "sandbox.yaml")


def test_check_passes_on_the_sandbox_mapping_and_writes_nothing(
    home, ploomes, customerx, monkeypatch, capsys
):
    point_at(monkeypatch, ploomes, customerx)
    assert main(["check", SANDBOX_MAPPING]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and "result: ready to sync" in out and "7 mapped custom field(s)" in out
    assert not home.exists()  # no state folder, no pacing file, no database
    # the key, /Fields, then the probes: one-row reads (issue 28, build 4), at most two per form
    probes = [p for _, p in ploomes.requests if not p.startswith(("/Account", "/Fields"))]
    assert (
        customerx.writes == []
        and len(probes) <= 12
        and all("top%3D1" in p or "%24top=1" in p or "(" in p for p in probes)
    )
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
    # the API left unchecked has a line of its own (issue 29: a newcomer saw no CustomerX line at all)
    assert "skip  CustomerX: not checked: $CUSTOMERX_TOKEN not set" in out


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


def test_init_driven_in_a_terminal_writes_a_mapping_that_check_accepts_and_that_syncs(
    home, tmp_path, ploomes, customerx, monkeypatch
):
    """A person at a real terminal (a pty): wrong answers are asked again, Enter keeps defaults,
    custom fields are picked by number from the live account's list."""
    point_at(monkeypatch, ploomes, customerx)
    monkeypatch.setenv("PLOOMES_CX_MAPPINGS", str(tmp_path))
    child = pexpect.spawn(CLI, ["init", "acme"], env=dict(os.environ), encoding="utf-8", timeout=60)
    steps = [
        (r"Clients come from .*\[organizations\]: ", "companies"),
        (r"answer one of: organizations, persons, deals\r\nClients come from .*: ", ""),
        (r"Contacts come from .*\[persons\]: ", ""),
        (r"Contracts come from .*\[won_deals\]: ", ""),
        (r"Match records by, in this order .*: ", "email, cnpj_cpf"),
        (r"Timeline brings .*: ", "notes"),
        (r"Sync windows are .*\[daily\]: ", "hourly"),
        (r"First window \(YYYY-MM-DD\) \[\d{4}-\d\d-\d\d\]: ", "2026-11-31"),
        (r"not a real date\r\nFirst window .*: ", "2026-11-01"),
        (r"Time zone of the windows \[America/Sao_Paulo\]: ", ""),
    ]
    for prompt, answer in steps:
        child.expect(prompt)
        child.sendline(answer)
    child.expect(r"travel to clients:\r\n((?:\s+\d+\. .*\r\n)+)Bring which to clients\? .*: ")
    segmento = next(
        line.split(".")[0].strip() for line in child.match.group(1).splitlines() if "Segmento" in line
    )
    child.sendline(segmento)
    child.expect(r"CustomerX name for 'Segmento' \[segmento\]: ")
    child.sendline("")
    child.expect(r"Bring which to contacts\? .*: ")
    child.sendline("")
    child.expect(r"travel to contracts:\r\n((?:\s+\d+\. .*\r\n)+)Bring which to contracts\? .*: ")
    offered = child.match.group(1).splitlines()
    plano = next(line.split(".")[0].strip() for line in offered if "Plano" in line)
    canal = next(line.split(".")[0].strip() for line in offered if "Canal" in line)
    child.sendline("1,99")
    child.expect(r"numbers from 1 to \d+, comma-separated, or none\r\nBring which to contracts\? .*: ")
    child.sendline(f"{plano},{canal}")
    child.expect(r"CustomerX name for 'Canal' \[canal\]: ")
    child.sendline("plano")
    child.expect(r"CustomerX name for 'Plano contratado' \[plano_contratado\]: ")
    child.sendline("plano")  # a name this section already maps is asked again
    child.expect(r"'plano' is already mapped in this section; pick another name\r\n.*\[plano_contratado\]: ")
    child.sendline("")
    child.expect(r"next: ploomes-cx check acme")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    text = (tmp_path / "acme.yaml").read_text()
    assert SECRET_KEY not in text and CX_TOKEN not in text and "PLOOMES_USER_KEY" in text
    m = load_mapping(tmp_path / "acme.yaml")
    assert (m.clients.source, m.identifiers, m.timeline, m.sync.cadence) == (
        "organizations",
        ["email", "cnpj_cpf"],
        ["notes"],
        "hourly",
    )
    assert [(c.ploomes[-2:], c.customerx) for c in m.custom_fields.clients] == [("0A", "segmento")]
    assert [c.customerx for c in m.custom_fields.contracts] == ["plano", "plano_contratado"]
    # the file as written is what `check` and `sync` take; only their pace is raised (the defaults,
    # 120 and 60 requests a minute, are 17 s of waiting here)
    for api in ("ploomes", "customerx"):
        text = text.replace(f"\n{api}:\n", f"\n{api}:\n  requests_per_minute: 6000\n", 1)
    assert text.count("requests_per_minute: 6000") == 2
    (tmp_path / "acme.yaml").write_text(text)
    assert main(["check", "acme"]) == 0
    assert main(["sync", "acme", "--window", "2026-11-05-10:00"]) == 0
    assert customerx.store.records["clients"]  # it synced into CustomerX


def test_init_refuses_to_overwrite_without_force(home, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PLOOMES_CX_MAPPINGS", str(tmp_path))
    (tmp_path / "acme.yaml").write_text("name: acme\n")
    assert main(["init", "acme"]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert (tmp_path / "acme.yaml").read_text() == "name: acme\n"


def test_init_force_replaces_a_linked_mapping_not_the_file_it_links_to(home, tmp_path, monkeypatch):
    """A clone's mappings/sandbox.yaml links to the package's built-in mapping: `init --force`
    writing through the link rewrote the package's file."""
    for name in ("PLOOMES_BASE_URL", "PLOOMES_USER_KEY"):
        monkeypatch.delenv(name, raising=False)
    folder, original = tmp_path / "mappings", tmp_path / "package" / "acme.yaml"
    folder.mkdir()
    original.parent.mkdir()
    original.write_text("name: acme\n")
    (folder / "acme.yaml").symlink_to(original)
    monkeypatch.setenv("PLOOMES_CX_MAPPINGS", str(folder))
    monkeypatch.setattr("builtins.input", lambda prompt="": "")
    assert main(["init", "acme", "--force"]) == 0
    assert original.read_text() == "name: acme\n"
    assert not (folder / "acme.yaml").is_symlink()
    assert "written by `ploomes-cx init acme`" in (folder / "acme.yaml").read_text()
