"""Fields a Ploomes list leaves out, read again from the entity by key: an attachment's `Url`.

ploomes-api.md §6 (C [S6]): a list or an expand of attachments may omit `Url`, and the public
code that migrates attachments reads it from `/Attachments(id)`. Whether a given account's list
carries it is not known, so the list is read as it comes and only the records listed without the
field are asked for again, one `GET <set>(id)` each: a list by `Id in (...)` is a list answer
too, and may omit the field just the same. Each read goes through the client, so it is paced and
retried like the list's pages; when the list carries the field, nothing more is asked.
HTTP only, through the client; no frames.
"""

from __future__ import annotations

from typing import Any

from ploomes_cx.ploomes.client import CallStats, PloomesApi, PloomesRequestError
from ploomes_cx.ploomes.entities import EntitySpec


def lacking(records: list[dict[str, Any]], fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """The records without a value in one of `fields` (left out, or `null`, or empty)."""
    return [r for r in records if any(r.get(f) in (None, "") for f in fields)]


def complete(api: PloomesApi, spec: EntitySpec, records: list[dict[str, Any]], stats: CallStats) -> int:
    """Fill `spec.by_key` fields into the records listed without them, in place, from
    `<path>(id)`; returns how many records were read by key. A record gone since it was listed
    (404) keeps what the list said: the window's next read settles it."""
    read = 0
    for record in lacking(records, spec.by_key) if spec.by_key else []:
        record_id = record.get("Id")
        if not isinstance(record_id, int):
            continue
        try:
            body = api.get(f"{spec.path}({record_id})", {}, stats)
        except PloomesRequestError as exc:
            if exc.status == 404:
                continue
            raise
        read += 1
        # a GET by key answers a `value` list (ploomes-api.md §1); a bare object is accepted too
        items = body.get("value", [body])
        found = next((i for i in items if isinstance(i, dict) and i.get("Id") == record_id), None)
        if found is not None:
            record.update({f: found[f] for f in spec.by_key if found.get(f) not in (None, "")})
    return read
