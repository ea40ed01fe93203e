"""The Ploomes endpoints each raw extract reads, in one declarative table.

Facts marked (I) in shared/specs/ploomes-api.md are assumptions about the live API; they are
collected here so an operator can see and change them in one place rather than in the client.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EntitySpec:
    name: str  # our name; the raw asset is raw_<name>
    path: str  # OData entity set
    base_filter: str | None  # ANDed to the window filter
    date_field: str  # which change date places a record in a window
    expand: tuple[str, ...]  # always expanded
    description: str
    # fields a list answer may leave out that `<path>(id)` carries: a record listed without them is
    # read again by key (`ploomes/by_key.py`)
    by_key: tuple[str, ...] = ()


ENTITIES: dict[str, EntitySpec] = {
    spec.name: spec
    for spec in (
        EntitySpec(
            "organizations",
            "/Contacts",
            "TypeId eq 1",
            "LastUpdateDate",
            ("Phones", "OtherProperties"),
            "Ploomes contacts with TypeId 1 (companies), with phones and custom fields.",
        ),
        EntitySpec(
            "persons",
            "/Contacts",
            "TypeId eq 2",
            "LastUpdateDate",
            ("Phones", "OtherProperties"),
            "Ploomes contacts with TypeId 2 (people); CompanyId links a person to a company.",
        ),
        EntitySpec(
            "deals",
            "/Deals",
            None,
            "LastUpdateDate",
            ("OtherProperties",),
            "Ploomes deals (StatusId 1 open, 2 won, 3 lost) with their custom fields.",
        ),
        # (I) Orders/Quotes carry LastUpdateDate like the other entities; lines come as an expand (C [S7][S8]).
        EntitySpec(
            "orders",
            "/Orders",
            None,
            "LastUpdateDate",
            ("Products($expand=Product($select=Id,Name,Code))",),
            "Ploomes orders (sales) with their product lines nested under Products.",
        ),
        EntitySpec(
            "quotes",
            "/Quotes",
            None,
            "LastUpdateDate",
            ("Products($expand=Product($select=Id,Name,Code))",),
            "Ploomes quotes (proposals) with their product lines nested under Products.",
        ),
        EntitySpec(
            "notes",
            "/InteractionRecords",
            None,
            "LastUpdateDate",
            (),
            "Ploomes interaction records: the notes that become CustomerX timeline entries.",
        ),
        EntitySpec(
            "tasks",
            "/Tasks",
            None,
            "LastUpdateDate",
            (),
            "Ploomes tasks: the activities that become CustomerX timeline entries.",
        ),
        # (I) No LastUpdateDate was seen on attachments, so they are windowed by CreateDate (contract §1).
        # C [S6]: lists may omit `Url`; `/Attachments(id)` has it (ploomes-api.md §6).
        EntitySpec(
            "attachments",
            "/Attachments",
            None,
            "CreateDate",
            (),
            "Ploomes attachment metadata (name, type, link), windowed by CreateDate; an attachment "
            "listed without its `Url` is read again by key (`/Attachments(id)`) for it.",
            by_key=("Url",),
        ),
    )
}
