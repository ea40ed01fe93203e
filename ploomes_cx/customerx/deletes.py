"""Deleting a CustomerX record so that "gone" is never said of a record CustomerX still holds.

Delete by external id is known from a catalogue only (customerx-api.md §7/§8.1: `DELETE /clients`
with no id in the path, C [S1]; where the id travels is inferred), and a 404 means an unknown
record *or* a wrong path (§6, C [S7]). So a 404 is not taken as "already gone": the record is
read back, by our external id and then by its CustomerX id, each answer checked to be the record
asked for (a filter the server ignores answers every record). Absent: gone. Present: the route by
external id is not this server's, and it is deleted by its numeric id (`DELETE /clients/{id}`,
C [S2]). Refused there too: `DeleteUnconfirmed`, a clear error, and nothing is forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ploomes_cx.customerx.client import CallStats, CustomerXApi, CustomerXRejected
from ploomes_cx.customerx.endpoints import RESOURCES
from ploomes_cx.customerx.own_id import OwnIdLookup


class DeleteUnconfirmed(CustomerXRejected):
    """CustomerX answered 404 to the delete but still holds the record, and would not delete it by
    its numeric id either: the record is kept in our crosswalk, and the ledger says why."""


@dataclass(frozen=True)
class Deleted:
    outcome: str  # deleted | already_absent
    detail: str


def _held(
    api: CustomerXApi, entity: str, ext: str, cx_id: int | None, stats: CallStats
) -> dict[str, Any] | None:
    """The record CustomerX holds under our external id or, failing that, its numeric id."""
    found = OwnIdLookup(api, entity, stats).find(ext)
    if found is not None or cx_id is None:
        return found
    # `id` as a list filter is LOW [S9]: an answer that ignores it is scanned for the id
    rows = api.list_all(RESOURCES[entity].list, params={"id": str(cx_id)}, stats=stats)
    return next((r for r in rows if str(r.get("id")) == str(cx_id)), None)


def delete(api: CustomerXApi, entity: str, ext: str, cx_id: int | None, stats: CallStats) -> Deleted:
    """Delete one record we own; raises `CustomerXRejected` for a refusal, `DeleteUnconfirmed`
    when CustomerX keeps it whatever route is asked."""
    ops = RESOURCES[entity]
    try:
        api.call(ops.delete, external_id=ext, stats=stats)
        return Deleted("deleted", "deleted in CustomerX")
    except CustomerXRejected as exc:
        if exc.status != 404:
            raise
    held = _held(api, entity, ext, cx_id, stats)
    if held is None:
        return Deleted(
            "already_absent", "CustomerX answered 404 and holds it neither by external id nor by id"
        )
    by_id = str(held["id"])
    now_named = held.get(ops.external_id_field)
    if now_named not in (None, "", ext):  # edited in CustomerX since: no longer ours to delete
        raise DeleteUnconfirmed(
            404,
            f"the delete by external id answered 404; record {by_id} that we created now carries the "
            f"external id {now_named!r}, so it was not deleted: decide in CustomerX whether it still "
            "belongs to this integration",
            ops.delete,
            ext,
        )
    try:
        api.call(ops.delete_by_id, external_id=by_id, stats=stats)
    except CustomerXRejected as exc:
        raise DeleteUnconfirmed(
            exc.status,
            f"the delete by external id answered 404, yet CustomerX still holds it as record {by_id}, and "
            f"DELETE by that id was refused ({exc.body[:200]}); it is kept. Check customerx.endpoints "
            f"(delete_{entity[:-1]}) against this account's API",
            exc.operation,
            ext,
        ) from None
    return Deleted(
        "deleted",
        f"deleted by its CustomerX id {by_id} (the delete by external id answered 404 on this server)",
    )
