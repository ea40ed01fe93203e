"""The sandbox CustomerX plays each reading customerx-api.md leaves open, held to the spec's words
over raw HTTP (never through our client); and every switch names the sentence it stands for."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from ploomes_cx.sandbox import CustomerXSandbox
from ploomes_cx.sandbox.readings import READINGS, ReadingError, alternatives, for_api, parse


@contextmanager
def _cx(**readings: str) -> Iterator[httpx.Client]:
    with (
        CustomerXSandbox(requests_per_minute=60_000, burst=1000, readings=readings) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": server.token}) as http,
    ):
        assert http.post("/clients", json={"external_id_client": "C1", "company_name": "Um"}).is_success
        yield http


def test_every_switch_quotes_the_spec_sentence_it_stands_for_and_has_an_alternative():
    for reading in READINGS.values():
        assert "-api.md §" in reading.spec, reading.name
        assert reading.alternatives, reading.name
    assert len(alternatives()) >= len(READINGS)


def test_readings_are_checked_and_filled_with_defaults():
    assert parse(["attributes=merge"]) == {"attributes": "merge"}
    with pytest.raises(ReadingError, match="known:"):
        parse(["nope=1"])
    with pytest.raises(ReadingError, match="choose one of replace, merge"):
        parse(["attributes=sometimes"])
    assert for_api("customerx", {"attributes": "merge"})["attributes"] == "merge"
    assert for_api("customerx", None)["timestamps"] == READINGS["timestamps"].default


def test_the_sandbox_command_lists_every_reading_and_refuses_an_unknown_one():
    cli = str(Path(sys.executable).parent / "ploomes-cx")
    listed = subprocess.run([cli, "sandbox", "--readings"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and all(name in listed.stdout for name in READINGS)
    wrong = subprocess.run(
        [cli, "sandbox", "--reading", "attributes=x"], capture_output=True, text=True, timeout=60
    )
    assert wrong.returncode != 0 and "choose one of replace, merge" in wrong.stderr


@pytest.mark.parametrize("reading", READINGS["attributes"].values)
def test_customerx_8_6_an_update_replaces_or_merges_the_attribute_list_and_empty_clears(reading):
    """§8.6: whether an update replaces the list or merges it by name is not documented (I);
    §3: keys sent as `null`/`""` are cleared."""
    with _cx(attributes=reading) as http:
        attrs = [{"label": "a", "value": "1"}, {"label": "b", "value": "2"}]
        assert http.put("/clients?external_id_client=C1", json={"custom_attributes": attrs}).is_success
        body = {"custom_attributes": [{"label": "b", "value": ""}]}
        held = http.put("/clients?external_id_client=C1", json=body).json()["custom_attributes"]
    values = {a["name"]: a["value"] for a in held}
    assert values == ({"b": ""} if reading == "replace" else {"a": "1", "b": ""})


@pytest.mark.parametrize("reading", READINGS["delete_by_external_id"].values)
def test_customerx_7_delete_by_external_id_is_served_or_a_404_and_by_numeric_id_always(reading):
    """§7/§8.1: DELETE by external id C [S1] (form I), by numeric id C [S2]; §6: 404 = unknown
    resource or wrong path."""
    with _cx(delete_by_external_id=reading) as http:
        assert http.post("/clients", json={"external_id_client": "C2", "company_name": "Dois"}).is_success
        by_ext = http.delete("/clients", params={"external_id_client": "C1"})
        assert by_ext.status_code == (404 if reading == "404" else 200)
        two = http.get("/clients", params={"external_id_client": "C2"}).json()[0]["id"]
        assert http.delete(f"/clients/{two}").is_success
        left = {c["external_id_client"] for c in http.get("/clients").json()}
    assert left == ({"C1"} if reading == "404" else set())


def test_customerx_8_4_timelines_name_their_client_as_each_reading_says_and_give_time_back():
    """§8.4: `GET /timelines` I [S5 only], shape and filters undocumented; §3: timestamps may end in `Z`."""
    entry = {"external_id_client": "C1", "title": "T", "body": "b", "created_at": "2026-11-03T10:00:00.750"}
    seen = {}
    for client in READINGS["timeline_client"].values:
        with _cx(timeline_client=client, timestamps="utc_z") as http:
            assert http.post("/timelines", json=entry).is_success
            seen[client] = http.get("/timelines").json()[0]
    assert (
        seen["nested"]["client"]["external_id_client"] == "C1" and "external_id_client" not in seen["nested"]
    )
    assert seen["top_level"]["external_id_client"] == "C1" and "client" not in seen["top_level"]
    assert (
        "external_id_client" not in seen["id_only"] and "external_id_client" not in seen["id_only"]["client"]
    )
    assert seen["id_only"]["client_id"] == seen["id_only"]["client"]["id"]
    assert {s["created_at"] for s in seen.values()} == {
        "2026-11-03T13:00:00.000Z"
    }  # local 10:00, in UTC, cut


@pytest.mark.parametrize("reading", READINGS["timeline_filter"].values)
def test_customerx_8_4_the_timeline_filter_is_ignored_or_honoured(reading):
    with _cx(timeline_filter=reading) as http:
        assert http.post("/clients", json={"external_id_client": "C2", "company_name": "Dois"}).is_success
        for client in ("C1", "C2"):
            assert http.post("/timelines", json={"external_id_client": client, "title": client}).is_success
        titles = {t["title"] for t in http.get("/timelines", params={"external_id_client": "C1"}).json()}
    assert titles == ({"C1", "C2"} if reading == "ignored" else {"C1"})


@pytest.mark.parametrize("reading", READINGS["duplicate_create"].values)
def test_customerx_7_a_taken_external_id_on_create_earns_the_readings_answer(reading):
    """§7: duplicate external id on plain POST create is unknown (I: 422); §6: no error body seen."""
    with _cx(duplicate_create=reading) as http:
        again = http.post("/clients", json={"external_id_client": "C1", "company_name": "Outra"})
    assert again.status_code == {"409": 409, "accepted": 201}.get(reading, 422)
    assert ("already" in again.text) == (reading == "422_already")
