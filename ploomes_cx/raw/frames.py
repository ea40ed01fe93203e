"""Raw rows as DataFrames: the records of a window kept exactly as the API sent them, next to the
few columns the layer needs to be queried and replaced by window."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd

from ploomes_cx.ploomes.dates import parse

# the last column of the raw tables and of the tables of records fetched by Id
DIGEST_COLUMN = dg.TableColumn(
    "digest",
    "ubigint",
    description="A 64-bit digest of the payload text, made when it was read: what the next "
    "staging compares with the one it read last, to stage only the records that changed",
)
RAW_COLUMNS = dg.TableSchema(
    columns=[
        dg.TableColumn(
            "window_start", "timestamp", description="Start of the sync window (partition), local time"
        ),
        dg.TableColumn("id", "bigint", description="Ploomes Id"),
        dg.TableColumn(
            "changed_at", "timestamp", description="LastUpdateDate (CreateDate for attachments), local"
        ),
        dg.TableColumn("payload", "json", description="The record exactly as the Ploomes API returned it"),
        dg.TableColumn("extracted_at", "timestamp", description="When this copy was read, UTC"),
        dg.TableColumn("run_id", "varchar", description="Dagster run that read it"),
        dg.TableColumn(
            "head",
            "json",
            description="The payload without its custom fields (OtherProperties), null when it has "
            "none: what staging parses for the standard fields",
        ),
        dg.TableColumn(
            "custom_values",
            "json",
            description="OtherProperties with each field's filled value slots only (its FieldKey "
            "and the non-null members), null when the payload has no list of them: what staging "
            "parses for the mapped custom fields",
        ),
        DIGEST_COLUMN,
    ]
)
FIELDS_COLUMNS = dg.TableSchema(
    columns=[
        dg.TableColumn("window_start", "timestamp", description="Sync window the catalogue was read for"),
        dg.TableColumn("id", "bigint", description="Ploomes field Id"),
        dg.TableColumn("field_key", "varchar", description="FieldKey, as used in OtherProperties"),
        dg.TableColumn("entity_id", "bigint", description="1 contact, 2 deal, 4 order, 12 task"),
        dg.TableColumn("payload", "json", description="The field definition as returned"),
        dg.TableColumn("extracted_at", "timestamp", description="When it was read, UTC"),
        dg.TableColumn("run_id", "varchar", description="Dagster run that read it"),
    ]
)


def raw_frame(
    records: Iterable[dict[str, Any]],
    date_field: str,
    window: dg.TimeWindow,
    naive_zone: ZoneInfo,
    run_id: str,
    history: bool = False,
    cut: Callable[[dt.datetime], dt.datetime] | None = None,
    placed: dict[int, str] | None = None,
) -> tuple[pd.DataFrame, list[int]]:
    """The run's rows, and the ids of records whose date falls outside its window.

    Such records were not asked for; they are left to the window they belong to (which extracts
    them), and reported, never stored in the wrong partition. The history window (`history`) is
    open at its start: only its end bounds it. A run over several windows gives each row the
    window its change date falls in (`cut`, `partitions.window_cutter`), so re-running one of
    them later replaces that window's rows only. `placed` gives, for records read through their
    parents (`ploomes/windows.py`), the parent's change date that places them instead of their own.

    `head` repeats the payload without `OtherProperties`, and `custom_values` that list without
    its null slots. Ploomes sends every value slot of every custom field, nulls included, so the
    list is most of a contact's or deal's JSON (seven eighths of the sandbox's persons, four
    fifths of it nulls); staging parses each part from its own column. Writing them costs nothing
    a rate-limited extraction notices; parsing a million whole payloads at every staging run did.
    """
    zone = window.start.tzinfo
    start, end = window.start, window.end
    local_start = start.replace(tzinfo=None)
    extracted_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows, outside = [], []
    for record in records:
        stamp = parse((placed or {}).get(record["Id"]) or record[date_field], naive_zone)
        if not (history or start <= stamp) or not stamp < end:
            outside.append(int(record["Id"]))
            continue
        local = stamp.astimezone(zone).replace(tzinfo=None)
        rows.append(
            (
                local_start if cut is None else cut(local),
                int(record["Id"]),
                local,
                _text(record),
                extracted_at,
                run_id,
                _head(record),
                _custom_values(record),
            )
        )
    frame = pd.DataFrame(rows, columns=[c.name for c in RAW_COLUMNS.columns if c is not DIGEST_COLUMN])
    frame["digest"] = payload_digest(frame["payload"])
    texts = {"payload": "string", "run_id": "string", "head": "string", "custom_values": "string"}
    return _typed(frame, {"id": "int64", **texts}), outside


def _head(record: dict[str, Any]) -> str | None:
    if "OtherProperties" not in record:
        return None
    rest = {k: v for k, v in record.items() if k != "OtherProperties"}
    return _text(rest)


def _custom_values(record: dict[str, Any]) -> str | None:
    items = record.get("OtherProperties")
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        return None  # another shape (a webhook's map): staging reads it from the payload
    return _text([{k: v for k, v in item.items() if v is not None} for item in items])


def payload_digest(payloads: pd.Series) -> pd.Series:
    """Each payload text's digest (null for none): pandas' own hash of the values, the same in
    every process (a fixed key, unlike Python's `hash`), computed in C, so a window's rows cost a
    few milliseconds here instead of every payload being read again at every staging. A pandas
    release that changed it would only make the records read after it look changed, once."""
    present = payloads.notna()
    digests = pd.Series(pd.NA, index=payloads.index, dtype="UInt64")
    if present.any():
        digests[present] = pd.util.hash_pandas_object(payloads[present].astype(str), index=False).to_numpy()
    return digests


def _text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _typed(frame: pd.DataFrame, dtypes: dict[str, str]) -> pd.DataFrame:
    """Fixed dtypes even for an empty frame, so DuckDB creates the same table either way."""
    for col in frame.columns:
        if col in dtypes:
            frame[col] = frame[col].astype(dtypes[col])
        elif col in ("window_start", "changed_at", "extracted_at"):
            frame[col] = pd.to_datetime(frame[col]).astype("datetime64[us]")
    return frame


def fields_frame(catalogue: list[dict[str, Any]], window: dg.TimeWindow, run_id: str) -> pd.DataFrame:
    """The `raw_fields` rows of one window: the catalogue as returned, one row per field."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    frame = pd.DataFrame(
        [
            (
                window.start.replace(tzinfo=None),
                int(f["Id"]),
                str(f.get("Key")),
                int(f.get("EntityId") or 0),
                json.dumps(f, ensure_ascii=False),
                now,
                run_id,
            )
            for f in catalogue
        ],
        columns=[c.name for c in FIELDS_COLUMNS.columns],
    )
    return _typed(
        frame,
        {"id": "int64", "entity_id": "int64", "field_key": "string", "payload": "string", "run_id": "string"},
    )


DEPENDENCY_COLUMNS = dg.TableSchema(
    columns=[
        dg.TableColumn("window_start", "timestamp", description="Sync window whose records needed it"),
        dg.TableColumn(
            "entity", "varchar", description="Raw entity it is staged as (contacts: asked, not found)"
        ),
        dg.TableColumn("id", "bigint", description="Ploomes Id"),
        dg.TableColumn("changed_at", "timestamp", description="LastUpdateDate, local; null when not found"),
        dg.TableColumn(
            "payload", "json", description="The record as returned; null when Ploomes no longer has it"
        ),
        dg.TableColumn(
            "needed_by", "varchar", description="The first record that needed it, and by which field"
        ),
        dg.TableColumn("extracted_at", "timestamp", description="When it was read, UTC"),
        dg.TableColumn("run_id", "varchar", description="Dagster run that read it"),
        DIGEST_COLUMN,
    ]
)


@dataclass(frozen=True)
class Fetched:
    """One record fetched by Id for a dependency (`record` None: asked for, not found)."""

    entity: str
    id: int
    record: dict[str, Any] | None
    needed_by: str
    window_start: dt.datetime | None = None  # the window of the earliest record needing it


def dependency_frame(
    fetched: list[Fetched], window: dg.TimeWindow, naive_zone: ZoneInfo, run_id: str
) -> pd.DataFrame:
    """The `raw_dependencies` rows of one run, each in the window of the record that needs it."""
    zone = window.start.tzinfo
    extracted_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = []
    for f in fetched:
        stamp = f.record.get("LastUpdateDate") or f.record.get("CreateDate") if f.record else None
        changed = parse(stamp, naive_zone).astimezone(zone).replace(tzinfo=None) if stamp else None
        payload = json.dumps(f.record, ensure_ascii=False, separators=(",", ":")) if f.record else None
        rows.append(
            (
                f.window_start or window.start.replace(tzinfo=None),
                f.entity,
                f.id,
                changed,
                payload,
                f.needed_by,
                extracted_at,
                run_id,
            )
        )
    frame = pd.DataFrame(rows, columns=[c.name for c in DEPENDENCY_COLUMNS.columns if c is not DIGEST_COLUMN])
    frame["digest"] = payload_digest(frame["payload"])
    return _typed(
        frame,
        {"entity": "string", "id": "int64", "payload": "string", "needed_by": "string", "run_id": "string"},
    )
