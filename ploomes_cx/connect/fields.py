"""`ploomes-cx fields`: the account's custom fields as a person picks them, and the mapping block
that brings the picked ones. No HTTP here: the catalogue and the sampled records come in.

EntityIds 1 (contact), 2 (deal) and 4 (order) are confirmed (ploomes-api.md §6, C [S2]); the
quote's is not (I), so fields of any other entity are listed as `entity <id>` and left out of
the block (a mapping cannot read them).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any

from ploomes_cx.mapping import Mapping
from ploomes_cx.ploomes.catalogue import is_custom
from ploomes_cx.ploomes.payloads import CONTACT_ENTITY, DEAL_ENTITY, ORDER_ENTITY

ENTITY_NAMES = {CONTACT_ENTITY: "contacts", DEAL_ENTITY: "deals", ORDER_ENTITY: "orders"}
SAMPLED_SETS = {"contacts": "/Contacts", "deals": "/Deals", "orders": "/Orders", "quotes": "/Quotes"}


@dataclass(frozen=True)
class FieldRow:
    entity: str
    key: str
    name: str
    type: str
    options: list[str]
    filled: int | None  # how many sampled records have a value; None when none was sampled
    sampled: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def entity_name(entity_id: Any) -> str:
    return ENTITY_NAMES.get(entity_id, f"entity {entity_id}")


def field_rows(catalogue: list[dict[str, Any]], samples: dict[str, list[dict[str, Any]]]) -> list[FieldRow]:
    """One row per custom field, by entity then name, with its fill rate over the sampled records."""
    filled: dict[str, int] = {}
    for records in samples.values():
        for record in records:
            for item in record.get("OtherProperties") or []:
                if any(
                    v not in (None, "")
                    for k, v in item.items()
                    if k.endswith("Value") or k.endswith("ValueName")
                ):
                    filled[item.get("FieldKey")] = filled.get(item.get("FieldKey"), 0) + 1
    rows = []
    for f in catalogue:
        if not is_custom(f):
            continue
        entity = entity_name(f.get("EntityId"))
        kind = f.get("Type") or {}
        options = [str(o.get("Name")) for o in ((f.get("OptionsTable") or {}).get("Options") or [])]
        sampled = len(samples.get(entity, []))
        rows.append(
            FieldRow(
                entity,
                str(f["Key"]),
                str(f.get("Name") or f.get("Label") or f["Key"]),
                f"{kind.get('Name', 'type ' + str(f.get('TypeId')))} ({kind.get('NativeType', '?')})",
                options,
                filled.get(f["Key"], 0) if entity in samples else None,
                sampled,
            )
        )
    return sorted(rows, key=lambda r: (r.entity, r.name.lower()))


def table(rows: list[FieldRow]) -> list[str]:
    out = [f"{'entity':<9} {'filled':>9}  {'name':<28} {'type':<30} key / options"]
    for r in rows:
        fill = "-" if r.filled is None else f"{r.filled}/{r.sampled}"
        out.append(f"{r.entity:<9} {fill:>9}  {r.name[:28]:<28} {r.type[:30]:<30} {r.key}")
        if r.options:
            out.append(f"{'':<52}options: {', '.join(r.options[:8])}{' …' if len(r.options) > 8 else ''}")
    return out


def attribute_name(name: str) -> str:
    """A CustomerX attribute name from a Ploomes field name: `Número de funcionários` ->
    `numero_de_funcionarios` (a suggestion; the account's own names win)."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "_", folded).strip("_") or "campo"


def yaml_block(rows: list[FieldRow], m: Mapping) -> str:
    """`custom_fields:` ready to paste: contact fields under clients (move the ones meant for
    contacts), deal fields under contracts, order fields too when contracts come from products."""
    sections: dict[str, list[FieldRow]] = {"clients": [], "contacts": [], "contracts": []}
    for r in rows:
        if r.entity == "contacts":
            sections["clients"].append(r)
        elif r.entity == "deals" or (r.entity == "orders" and m.contracts.source == "deal_products"):
            sections["contracts"].append(r)
    lines = ["custom_fields:"]
    for section, picked in sections.items():
        if not picked:
            lines.append(f"  {section}: []")
            continue
        lines.append(f"  {section}:")
        for r in picked:
            fill = "" if r.filled is None else f", filled in {r.filled} of {r.sampled} sampled"
            lines.append(f"    - ploomes: {r.key}   # {r.name} ({r.type}{fill})")
            lines.append(f"      customerx: {attribute_name(r.name)}")
    return "\n".join(lines)
