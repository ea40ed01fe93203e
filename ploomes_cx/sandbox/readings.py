"""The readings of the two APIs that the specs leave open, one switch each, for both sandboxes.

Nobody here can call the real Ploomes or CustomerX, so where `shared/specs/` marks a fact inferred
(I) or partly confirmed, the sandboxes must be able to play every reading: a sandbox that plays
only the reading our code assumed hides the defect that reading would cause. Each switch names the
spec sentence it stands for; the first value is the default, the spec's most likely reading.
`ploomes-cx sandbox --reading NAME=VALUE` and the test fixtures set them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

Api = Literal["ploomes", "customerx"]


@dataclass(frozen=True)
class Reading:
    """One open question about an API and the answers a sandbox can give to it."""

    name: str
    api: Api
    values: tuple[str, ...]  # the first is the default
    spec: str  # the spec's words the switch stands for

    @property
    def default(self) -> str:
        return self.values[0]

    @property
    def alternatives(self) -> tuple[str, ...]:
        return self.values[1:]


_ALL = (
    Reading(
        "attachments_url",
        "ploomes",
        ("in_list", "by_id_only"),
        "ploomes-api.md §6: the expand may omit `Url` and may return fewer items than exist ⇒ use "
        "`/Attachments?$filter=DealId eq N` (or `ContactId`) and `/Attachments(id)` for `Url` — C [S6]",
    ),
    Reading(
        "field_type_names",
        "ploomes",
        ("pt", "en", "renamed"),
        "ploomes-api.md §6: `Type` `{Id, Name, NativeType}` C [S2][S3][S4]; only TypeIds 7 and 18 are "
        "known, others resolved via `/Fields?$expand=Type` at runtime (I); what `Name` says is not stated",
    ),
    Reading(
        "id_in",
        "ploomes",
        ("accepted", "400"),
        "ploomes-api.md §2: operators seen `eq`, `ne`, `gt`, `ge`, `le`, `and`, `contains`, navigation "
        "paths — C; `in` is not among them (OData 4.01); §4: 400 is a bad OData query",
    ),
    Reading(
        "or_filter",
        "ploomes",
        ("accepted", "400"),
        "ploomes-api.md §2: `lt`, `or`, `any()` lambdas — I (standard OData)",
    ),
    Reading(
        "orders_quotes_last_update",
        "ploomes",
        ("filterable", "400"),
        "ploomes-api.md §9: watermark on `LastUpdateDate` — C [S7]; field exists on Contacts, Deals, "
        "Tasks, InteractionRecords — C [S3] (Orders and Quotes not named); §8: `/Orders?$filter=DealId "
        "eq N` C [S7], `/Quotes?$filter=Deal/Id eq N` C [S8]",
    ),
    Reading(
        "attachments_unscoped",
        "ploomes",
        ("listed", "timeout", "400"),
        "ploomes-api.md §2: unscoped `/Attachments` listings are slow or time out — C [S6][S8]; §6: "
        "unscoped list cannot be sorted/listed whole; Id windows (`Id gt X and Id le X+W`) are fast; "
        "`/Attachments?$filter=DealId eq N` (or `ContactId`) — C [S6]",
    ),
    Reading(
        "deleted_deals_paging",
        "ploomes",
        ("accepted", "400"),
        "ploomes-api.md §9: `GET /Deals/GetDeletedDeals?$filter=LastUpdateDate ge <ts>` — C [S2]; "
        "paging it with `$orderby`/`$top`/`Id gt` is shown nowhere",
    ),
    Reading(
        "unknown_select",
        "ploomes",
        ("ignored", "400"),
        "ploomes-api.md §4: codes 400 (bad OData / field) — C for handling in [S4]; semantics I",
    ),
    Reading(
        "attributes",
        "customerx",
        ("replace", "merge"),
        "customerx-api.md §8.6: whether an update replaces the attribute list or merges it by name is "
        "not documented (I)",
    ),
    Reading(
        "delete_by_external_id",
        "customerx",
        ("served", "404"),
        "customerx-api.md §7/§8.1: DELETE by external id C [S1] (a catalogue, no path id), by numeric id "
        "C [S2]; §6: a 404 is an unknown resource or a wrong path",
    ),
    Reading(
        "timeline_client",
        "customerx",
        ("nested", "top_level", "id_only"),
        "customerx-api.md §8.4: `GET /timelines` I [S5 only]; neither the list's shape nor its filters "
        "are documented",
    ),
    Reading(
        "timeline_filter",
        "customerx",
        ("ignored", "honoured"),
        "customerx-api.md §8.4: `GET /timelines` I [S5 only]; its filters are not documented",
    ),
    Reading(
        "timestamps",
        "customerx",
        ("echo", "utc_z"),
        "customerx-api.md §3: timestamps in responses are ISO-8601, may end in `Z` (C [S2])",
    ),
    Reading(
        "duplicate_create",
        "customerx",
        ("422_already", "422_other_words", "409", "accepted"),
        "customerx-api.md §7: duplicate external id on plain POST create is unknown (I: 422); §6: error "
        "body shape not observed anywhere, never parse errors",
    ),
)

READINGS: dict[str, Reading] = {r.name: r for r in _ALL}


class ReadingError(ValueError):
    """A `--reading` that names no switch or a value the switch does not have."""


def parse(pairs: Iterable[str]) -> dict[str, str]:
    """`NAME=VALUE` strings, as `--reading` takes them, checked against the switches."""
    chosen: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ReadingError(f"--reading {pair!r}: write NAME=VALUE, e.g. attributes=merge")
        chosen[name.strip()] = value.strip()
    return check(chosen)


def check(chosen: Mapping[str, str]) -> dict[str, str]:
    for name, value in chosen.items():
        reading = READINGS.get(name)
        if reading is None:
            raise ReadingError(f"no sandbox reading {name!r}; known: {', '.join(sorted(READINGS))}")
        if value not in reading.values:
            raise ReadingError(f"reading {name}={value!r}: choose one of {', '.join(reading.values)}")
    return dict(chosen)


def for_api(api: Api, chosen: Mapping[str, str] | None) -> dict[str, str]:
    """Every switch of one API's sandbox: the chosen value, else the default."""
    chosen = check(chosen or {})
    return {r.name: chosen.get(r.name, r.default) for r in READINGS.values() if r.api == api}


def alternatives(api: Api | None = None) -> list[tuple[str, str]]:
    """(switch, value) for every non-default reading: what a test matrix runs besides the default."""
    return [(r.name, v) for r in READINGS.values() if api in (None, r.api) for v in r.alternatives]
