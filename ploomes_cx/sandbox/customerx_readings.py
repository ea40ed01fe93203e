"""How the sandbox CustomerX plays the readings customerx-api.md leaves open (`sandbox/readings.py`).

Each function answers one open question in the way the chosen reading says, so the end-to-end
tests can run the product against every reading and demand the same CustomerX state.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ploomes_cx.sandbox.clock import ACCOUNT_TZ
from ploomes_cx.sandbox.customerx_values import Refused


def attributes_after(
    reading: str, held: list[dict[str, Any]] | None, sent: list[dict[str, Any]], creating: bool
) -> list[dict[str, Any]]:
    """The attribute list after a write. §8.6 leaves open whether an update replaces the list or
    merges it by name (I): under `merge` an attribute left out of the body keeps its value; one
    sent as `""` or `null` is cleared (§3)."""
    if creating or reading == "replace" or not held:
        return sent
    merged = {a["name"]: a for a in held} | {a["name"]: a for a in sent}
    return list(merged.values())


def refuse_delete_route(reading: str, resource: str, in_path: str | None) -> None:
    """The `delete_by_external_id: 404` reading: a server whose DELETE knows only the numeric id in
    the path (C [S2]); the catalogue's route by external id (§7, C [S1], its form I) is a 404, as
    any wrong path is (§6)."""
    if reading == "404" and (in_path is None or not in_path.isdigit()):
        raise Refused(404, {}, f"no route DELETE /{resource} by external id")


def refuse_duplicate(reading: str, key: str, value: Any) -> None:
    """A plain create naming a taken external id: its answer is unknown (§7, I: 422) and no error
    body was ever seen (§6): a 422 in English, a 422 in other words, a 409, or none at all
    (`accepted`: a second record with the same external id is made)."""
    if reading == "409":
        raise Refused(409, {key: ["conflito"]}, "Conflict")
    if reading == "422_other_words":
        raise Refused(422, {key: ["já está em uso"]}, f"{key} {value!r} já está em uso")
    if reading == "422_already":
        raise Refused(422, {key: ["has already been taken"]}, f"{key} {value!r} already exists")


def timeline_as_served(
    readings: dict[str, str], entry: dict[str, Any], clients: dict[int, dict[str, Any]]
) -> dict[str, Any]:
    """A timeline entry as `GET /timelines` shows it: §8.4 knows the list from one weak source
    (I [S5]), so `timeline_client` names the client nested (`client{id, external_id_client}`), at
    the top level, or by CustomerX's id only; `timestamps` gives `created_at` as sent or in UTC
    with a `Z` (§3: may end in `Z`)."""
    served = {k: v for k, v in entry.items() if k not in ("external_id_client", "client")}
    client = clients.get(entry.get("client_id")) or {}
    reading = readings["timeline_client"]
    if reading == "top_level":
        served["external_id_client"] = client.get("external_id_client")
    else:
        served["client"] = {"id": client.get("id"), "company_name": client.get("company_name")}
        if reading == "nested":
            served["client"]["external_id_client"] = client.get("external_id_client")
    if readings["timestamps"] == "utc_z" and served.get("created_at"):
        served["created_at"] = _utc_z(str(served["created_at"]))
    return served


def _utc_z(value: str) -> str:
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    if when.tzinfo is None:
        when = when.replace(tzinfo=ACCOUNT_TZ)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
