"""Mapping files: defaults, the shipped sandbox mapping, and errors that name file, key and choices."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ploomes_cx.cli import main
from ploomes_cx.mapping import MappingError, load_mapping, parse_mapping
from ploomes_cx.mappings_folder import load_mappings
from ploomes_cx.plan import Plan
from ploomes_cx_tests.conftest import write_mapping

REPO = Path(__file__).resolve().parent.parent


def test_defaults_follow_the_contract():
    m = parse_mapping({"name": "acme"}, "acme.yaml")
    assert m.ploomes.base_url_env == "PLOOMES_BASE_URL" and m.ploomes.user_key_env == "PLOOMES_USER_KEY"
    assert (m.ploomes.requests_per_minute, m.ploomes.page_size) == (120, 300)
    assert (m.customerx.token_env, m.customerx.requests_per_minute, m.customerx.auth_scheme) == (
        "CUSTOMERX_TOKEN",
        60,
        "raw",
    )
    assert (m.sync.cadence, m.sync.start, m.sync.timezone) == ("daily", "2026-01-01", "America/Sao_Paulo")
    assert (m.clients.source, m.contacts.source, m.contracts.source) == (
        "organizations",
        "persons",
        "won_deals",
    )
    assert m.timeline == ["notes", "activities", "attachments"]
    assert m.identifiers == ["cnpj_cpf", "external_code", "email"]
    assert m.external_code_field == "Key" and m.quality.max_rejected_ratio == 0.05
    assert m.custom_fields.clients == []


def test_shipped_sandbox_mapping_covers_the_demo_needs():
    m = load_mapping(REPO / "mappings" / "sandbox.yaml")
    assert (m.clients.source, m.contacts.source, m.contracts.source) == (
        "organizations",
        "persons",
        "won_deals",
    )
    assert set(m.timeline) == {"notes", "activities", "attachments"}
    assert len(m.custom_fields.clients) + len(m.custom_fields.contacts) + len(m.custom_fields.contracts) >= 2
    assert [x.name for x in load_mappings(REPO / "mappings")] == ["sandbox"]


def test_entities_follow_the_sources():
    m = parse_mapping(
        {
            "name": "b2c",
            "clients": {"source": "persons"},
            "contacts": {"source": "persons"},
            "contracts": {"source": "deal_products"},
            "timeline": ["notes"],
        },
        "b2c.yaml",
    )
    assert Plan.of(m).extracts == ("fields", "organizations", "persons", "deals", "orders", "quotes", "notes")
    m = parse_mapping(
        {
            "name": "lean",
            "contacts": {"source": "organizations"},
            "contracts": {"source": "none"},
            "timeline": [],
        },
        "lean.yaml",
    )
    assert Plan.of(m).extracts == ("fields", "organizations")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"name": "Acme"}, ["name:", "[a-z][a-z0-9_]*", "'Acme'"]),
        ({"name": "a", "sync": {"cadence": "weekly"}}, ["sync.cadence", "'daily' or 'hourly'", "'weekly'"]),
        (
            {"name": "a", "clients": {"source": "companies"}},
            ["clients.source", "'organizations', 'persons' or 'deals'"],
        ),
        (
            {"name": "a", "identifers": ["email"]},
            ["identifers: unknown key", "allowed keys here:", "identifiers"],
        ),
        ({"name": "a", "ploomes": {"page_sise": 10}}, ["ploomes.page_sise: unknown key", "page_size"]),
        (
            {"name": "a", "identifiers": ["email", "cpf"]},
            ["identifiers[1]", "'cnpj_cpf', 'external_code' or 'email'"],
        ),
        ({"name": "a", "timeline": ["notes", "notes"]}, ["timeline", "more than once"]),
        ({"name": "a", "sync": {"timezone": "Brasil/SP"}}, ["sync.timezone", "IANA"]),
        ({"name": "a", "sync": {"start": "01/03/2026"}}, ["sync.start", "YYYY-MM-DD"]),
        ({"name": "a", "ploomes": {"page_size": 0}}, ["ploomes.page_size", "greater than or equal to 1"]),
        (
            {"name": "a", "custom_fields": {"clients": [{"ploomes": "x"}]}},
            ["custom_fields.clients[0].customerx: required key is missing"],
        ),
        ({"sync": {}}, ["name: required key is missing"]),
        ({"name": "select"}, ["name:", "reserved SQL word"]),
        ({"name": "full"}, ["name:", "reserved SQL word"]),
    ],
)
def test_bad_values_are_named_with_file_key_and_allowed_values(data, expected):
    with pytest.raises(MappingError) as err:
        parse_mapping(data, "mappings/acme.yaml")
    message = str(err.value)
    assert message.startswith("mappings/acme.yaml: invalid mapping")
    for part in expected:
        assert part in message


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nsync:\n  cadence: [daily\n")
    with pytest.raises(MappingError, match=r"broken.yaml: not valid YAML at line \d+"):
        load_mapping(path)


def test_a_key_given_twice_is_refused(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("name: twice\nsync:\n  cadence: daily\nsync:\n  cadence: hourly\n")
    with pytest.raises(MappingError, match=r"twice.yaml: not valid YAML at line 4.*'sync' appears twice"):
        load_mapping(path)


def test_two_files_with_one_name_are_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("name: same\n")
    (tmp_path / "b.yaml").write_text("name: same\n")
    with pytest.raises(MappingError, match="already used by"):
        load_mappings(tmp_path)


def test_cli_bad_mapping_exits_2_naming_the_key(tmp_path, capsys):
    path = tmp_path / "acme.yaml"
    path.write_text("name: acme\ncontracts:\n  source: lost_deals\n")
    code = main(["sync", str(path), "--window", "2026-11-01"])
    err = capsys.readouterr().err
    assert code == 2
    assert (
        "acme.yaml" in err and "contracts.source" in err and "'won_deals', 'deal_products' or 'none'" in err
    )
    assert "Traceback" not in err


def test_console_script_reports_bad_mapping_without_traceback(tmp_path):
    path = tmp_path / "acme.yaml"
    path.write_text("name: acme\nquality:\n  max_rejected_ratio: 2\n")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ploomes-cx"), "sync", str(path), "--window", "2026-11-01"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "quality.max_rejected_ratio" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_bad_window_exits_2(capsys):
    assert main(["sync", str(REPO / "mappings" / "sandbox.yaml"), "--window", "2026-10-01"]) == 2
    assert "names no complete daily window" in capsys.readouterr().err
    assert main(["sync", "sandbox", "--window", "2026-11-03..2026-11-01"]) == 2
    assert main(["sync", "sandbox", "--window", "yesterday"]) == 2


def test_cli_unknown_mapping_name_exits_2(capsys):
    assert main(["sync", "nope", "--window", "2026-11-01"]) == 2
    assert "no mapping named 'nope'" in capsys.readouterr().err


def test_a_window_in_another_form_names_the_range_form_too(tmp_path, capsys):
    """A newcomer who writes a range with a colon or a slash is told the START..END form."""
    path = str(write_mapping(tmp_path, "windows"))
    for spec in ("2026-11-01:2026-11-03", "2026-11-01/2026-11-03"):
        assert main(["sync", path, "--window", spec]) == 2
        assert "START..END for a range (e.g. 2026-11-01..2026-11-03)" in capsys.readouterr().err


def test_first_retry_seconds_sets_each_clients_first_wait_over_real_http(monkeypatch, caplog):
    """The added `first_retry_seconds` reaches both clients; jitter scales with it, so a small first
    wait is not padded by a fixed second. Here a Ploomes listing that always times out (504)."""
    import logging
    import re

    from ploomes_cx.customerx.resource import customerx_resource
    from ploomes_cx.ploomes.client import PloomesUnavailableError
    from ploomes_cx.ploomes.resource import ploomes_resource
    from ploomes_cx.sandbox import PloomesDataset, PloomesSandbox
    from ploomes_cx_tests.conftest import SECRET_KEY

    doc = {"name": "acme", "ploomes": {"first_retry_seconds": 0.05, "max_attempts": 3}}
    m = parse_mapping(doc | {"customerx": {"first_retry_seconds": 4}}, "acme.yaml")
    assert customerx_resource(m).backoff_initial_seconds == 4
    assert parse_mapping({"name": "acme"}, "acme.yaml").ploomes.first_retry_seconds == 1.0
    readings = {"attachments_unscoped": "timeout"}
    with PloomesSandbox(PloomesDataset(persons=20, seed=1), user_key=SECRET_KEY, readings=readings) as server:
        monkeypatch.setenv("PLOOMES_BASE_URL", server.url)
        monkeypatch.setenv("PLOOMES_USER_KEY", SECRET_KEY)
        caplog.set_level(logging.WARNING)
        resource = ploomes_resource(m).process_config_and_initialize()  # its EnvVars read, as in a run
        with (
            resource.api(logging.getLogger("first-retry")) as api,
            pytest.raises(PloomesUnavailableError),
        ):
            api.get("/Attachments", {})
        assert len(server.requests) == 3
    waits = [float(w) for w in re.findall(r"retry \d in ([\d.]+)s", caplog.text)]
    assert len(waits) == 2 and 0.05 <= waits[0] <= 0.1 and 0.1 <= waits[1] <= 0.15, waits
    with pytest.raises(MappingError, match="first_retry_seconds"):
        parse_mapping({"name": "acme", "ploomes": {"first_retry_seconds": 0}}, "acme.yaml")
