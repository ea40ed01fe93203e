"""Every reading of an open Ploomes question ends in the same CustomerX state (issue 28, 4 and 5).

Each test syncs the same windows of the same sandbox account through the CLI, once under the
switch's default reading and once under each other one (`sandbox/readings.py`), each into a fresh
CustomerX sandbox and state folder, and compares what CustomerX holds: the product must be right
whichever way the real API answers, over real HTTP on 127.0.0.1.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from ploomes_cx.cli import main
from ploomes_cx.ploomes import by_key
from ploomes_cx.ploomes.client import CallStats, PloomesApi
from ploomes_cx.ploomes.entities import ENTITIES
from ploomes_cx.sandbox import CustomerXSandbox, PloomesDataset, PloomesSandbox
from ploomes_cx.sandbox.ploomes_fields import field_key
from ploomes_cx.sandbox.readings import READINGS
from ploomes_cx_tests.conftest import CX_TOKEN, SECRET_KEY, point_at

# one worker runs this module (make test: --dist loadgroup), so its default reading's syncs (`_DEFAULT`) is made once, not once per worker
pytestmark = pytest.mark.xdist_group("readings_ploomes")
WINDOWS = "2026-11-02..2026-11-04"
USER_FIELD = field_key("contact", 0x14)  # "Responsável CS": a user-type field (TypeId 9)
CUSTOM = {
    field_key("contact", 0x0A): "segmento",  # option list
    field_key("contact", 0x0B): "funcionarios",  # integer
    field_key("contact", 0x13): "ativo",  # boolean
    USER_FIELD: "responsavel",
}
# CustomerX's own ids and clock, not the synced state (a timeline entry's created_at is the original date)
VOLATILE = {"id", "client_id", "updated_at"}


def _mapping(directory: Path) -> str:
    path = directory / "readings.yaml"
    fields = "".join(f"    - ploomes: {k}\n      customerx: {v}\n" for k, v in CUSTOM.items())
    path.write_text(
        textwrap.dedent("""\
        name: readings
        ploomes:
          requests_per_minute: 6000
          page_size: 100
          max_attempts: 3
          first_retry_seconds: 0.05
        customerx:
          requests_per_minute: 6000
          first_retry_seconds: 0.05
        sync:
          start: "2026-11-01"
        quality:
          max_rejected_ratio: 0.95
        clients:
          source: organizations
        contacts:
          source: persons
        contracts:
          source: none
        timeline: [attachments]
        custom_fields:
          clients:
        """)
        + fields
    )
    return str(path)


EXTERNAL_IDS = {  # customerx-api.md §7: what names a client, contact or contract
    "clients": "external_id_client",
    "contacts": "external_id_contact",
    "contracts": "external_id_contract",
}


def _state(customerx: CustomerXSandbox) -> dict[str, Any]:
    """What CustomerX holds, without its own ids and clock: records by external id, and the
    timeline entries (posted without one) as a sorted list."""
    records = customerx.store.records

    def kept(record: dict[str, Any], clock: set[str]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if k not in VOLATILE | clock}

    state: dict[str, Any] = {
        resource: {str(r[key]): kept(r, {"created_at"}) for r in records.get(resource, {}).values()}
        for resource, key in EXTERNAL_IDS.items()
    }
    state["timelines"] = sorted((kept(r, set()) for r in records.get("timelines", {}).values()), key=repr)
    return state


def _attributes(record: dict[str, Any]) -> dict[str, Any]:
    return {a.get("name", a.get("label")): a.get("value") for a in record.get("custom_attributes") or []}


# The default reading's sync, done once per process (xdist worker) for each mapping and shared
# by the tests that compare an alternative reading with it: the sandboxes are seeded, so it is the
# same whichever test runs it first (issue 29). Tests only read what it holds.
_DEFAULT: dict[str, Any] = {}


def _sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reading: str, value: str
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """CustomerX's state after `ploomes-cx sync` under one reading, and the Ploomes paths asked."""
    if value == READINGS[reading].default:
        if "readings" not in _DEFAULT:
            _DEFAULT["readings"] = _sync_once(tmp_path, monkeypatch, "default", {})
        return _DEFAULT["readings"]
    return _sync_once(tmp_path, monkeypatch, f"{reading}-{value}", {reading: value})


def _sync_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, readings: dict[str, str]
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    run = tmp_path / name
    run.mkdir()
    monkeypatch.setenv("PLOOMES_CX_HOME", str(run / "state"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with (
        PloomesSandbox(
            PloomesDataset(persons=400, seed=28),
            user_key=SECRET_KEY,
            requests_per_minute=60_000,
            burst=1000,
            readings=readings,
        ) as ploomes,
        CustomerXSandbox(
            token=CX_TOKEN, requests_per_minute=60_000, burst=1000, state_file=run / "cx.json"
        ) as customerx,
    ):
        point_at(monkeypatch, ploomes, customerx)
        assert main(["sync", _mapping(run), "--window", WINDOWS]) == 0
        return _state(customerx), [path for _, path in ploomes.requests]


def test_attachments_keep_their_link_when_only_attachments_by_id_has_it(tmp_path, monkeypatch):
    """ploomes-api.md §6: the list may omit `Url`; `/Attachments(id)` has it (C [S6])."""
    assert READINGS["attachments_url"].values == ("in_list", "by_id_only")
    listed, asked_listed = _sync(tmp_path, monkeypatch, "attachments_url", "in_list")
    by_id, asked_by_id = _sync(tmp_path, monkeypatch, "attachments_url", "by_id_only")

    entries = listed["timelines"]
    assert len(entries) > 10
    # the link is in every entry, as the list gave it (`https://files.sandbox.invalid/<Id>/<name>`)
    assert all("https://files.sandbox.invalid/" in entry["body"] for entry in entries)
    assert by_id == listed  # the same CustomerX state, links included
    # the link is asked by key only for what the list left out: never when the list has it
    singles = [p for p in asked_by_id if p.startswith("/Attachments(")]
    assert [p for p in asked_listed if p.startswith("/Attachments(")] == []
    assert len(singles) == len(set(singles)) >= len(entries)


def test_a_user_field_lands_the_same_whatever_the_field_types_are_called(tmp_path, monkeypatch):
    """ploomes-api.md §6: `Type {Id, Name, NativeType}`; the name is the account's wording."""
    values = READINGS["field_type_names"].values
    assert values[0] == "pt" and len(values) > 1
    states = {value: _sync(tmp_path, monkeypatch, "field_type_names", value)[0] for value in values}

    clients = states["pt"]["clients"]
    assert len(clients) > 10
    held = [_attributes(c) for c in clients.values()]
    assert all(h.get("responsavel") for h in held)  # every client's user field landed, as a name
    assert {h["responsavel"] for h in held} <= {"Ana Lima", "Bruno Reis", "Carla Dias", "Davi Rocha"}
    assert all(h.get("segmento") for h in held)  # and the option list, as its option's text
    for value in values[1:]:
        assert states[value] == states["pt"], value


def test_only_attachments_listed_without_a_link_are_read_by_key_and_a_gone_one_is_kept_as_listed():
    """The by-key reads cost one paced request each: none when the list has the link, one per
    attachment without one, and an attachment deleted since it was listed (404) is not an error."""
    with (
        PloomesSandbox(
            PloomesDataset(persons=100, seed=3), requests_per_minute=60_000, burst=1000
        ) as ploomes,
        PloomesApi(ploomes.url, ploomes.user_key, requests_per_minute=60_000) as api,
    ):
        spec, stats = ENTITIES["attachments"], CallStats()
        listed = [r for page in api.iter_pages(spec.path, stats) for r in page]
        assert len(listed) > 5 and all(r["Url"] for r in listed)
        assert by_key.complete(api, spec, listed, stats) == 0  # the list has every link
        ploomes.readings["attachments_url"] = "by_id_only"
        listed = [r for page in api.iter_pages(spec.path, stats) for r in page]
        assert all("Url" not in r for r in listed)
        gone = listed[1]["Id"]
        ploomes.delete("attachments", gone)
        before = len(ploomes.requests)
        assert by_key.complete(api, spec, listed, stats) == len(listed) - 1
        asked = [path for _, path in ploomes.requests[before:]]
    assert sorted(asked) == sorted(f"/Attachments({r['Id']})" for r in listed)  # each once, by key
    assert [r["Id"] for r in listed if "Url" not in r] == [gone]
    assert all(r["Url"].startswith("https://files.sandbox.invalid/") for r in listed if r["Id"] != gone)


FORM_READINGS = [  # issue 28, point 6: each refused form has a confirmed fallback, none leaves a gap
    ("id_in", "400"),
    ("or_filter", "400"),
    ("orders_quotes_last_update", "400"),
    ("attachments_unscoped", "timeout"),
    ("attachments_unscoped", "400"),
    ("unknown_select", "400"),
]


def _products_mapping(directory: Path) -> str:
    path = directory / "forms.yaml"
    path.write_text(
        textwrap.dedent("""\
        name: forms
        ploomes:
          requests_per_minute: 6000
          page_size: 100
          max_attempts: 3
          first_retry_seconds: 0.05
        customerx:
          requests_per_minute: 6000
          first_retry_seconds: 0.05
        sync:
          start: "2026-11-01"
        quality:
          max_rejected_ratio: 0.95
        contracts:
          source: deal_products
        timeline: [attachments]
        """)
    )
    return str(path)


def _sync_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, readings: dict[str, str]) -> dict[str, Any]:
    run = tmp_path / ("-".join(f"{k}={v}" for k, v in readings.items()) or "default")
    run.mkdir()
    monkeypatch.setenv("PLOOMES_CX_HOME", str(run / "state"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with (
        PloomesSandbox(
            PloomesDataset(persons=300, seed=28),
            user_key=SECRET_KEY,
            requests_per_minute=60_000,
            burst=1000,
            readings=readings,
        ) as ploomes,
        CustomerXSandbox(
            token=CX_TOKEN, requests_per_minute=60_000, burst=1000, state_file=run / "cx.json"
        ) as customerx,
    ):
        point_at(monkeypatch, ploomes, customerx)
        assert main(["sync", _products_mapping(run), "--window", WINDOWS]) == 0
        return _state(customerx)


@pytest.mark.parametrize(("reading", "value"), FORM_READINGS)
def test_a_refused_query_form_ends_in_the_same_customerx_state(tmp_path, monkeypatch, reading, value):
    """ploomes-api.md §2 (`in` absent, `or` I), §9 (`LastUpdateDate` named on four sets), §2/§6
    (unscoped `/Attachments` time out; Id windows are fast), §4 (400 for a bad field): under the
    refusing reading, product lines and attachments arrive complete, as under the default."""
    assert value in READINGS[reading].alternatives
    if "forms" not in _DEFAULT:  # the same for every reading: synced once (see _DEFAULT)
        _DEFAULT["forms"] = _sync_forms(tmp_path, monkeypatch, {})
    default = _DEFAULT["forms"]
    assert len(default["contracts"]) > 10 and len(default["timelines"]) > 10
    refused = {reading: value, **({"id_in": "400"} if reading == "or_filter" else {})}
    assert _sync_forms(tmp_path, monkeypatch, refused) == default
