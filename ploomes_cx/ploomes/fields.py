"""What a Ploomes custom field's value looks like, and which slot of `OtherProperties` holds it.

Ploomes sends every typed value slot of an `OtherProperties` item, the unused ones as JSON
`null` (ploomes-api.md §7: `StringValue`, `IntegerValue`, ..., `ObjectValueName`), some clients
and older payloads only the filled one, and webhooks a `{FieldKey: value}` map. Taking "the first
slot present" therefore reads a `null`; the slot must come from the field's type in the account's
`/Fields` catalogue: `Type.NativeType` names it (`<NativeType>Value`, C [S3]) and option lists
(TypeId 7 or an `OptionsTable`, C [S2]) keep their text in `ObjectValueName`.

Which TypeIds hold a user, contact, product or attachment reference is not documented (I), and
the type's `Name` is a display name in the account's language ("Usuário", "User", ...), so it
decides nothing. What the item itself shows does: a reference fills its `<Kind>ValueName` slot
(§7), so for every field typed by its `NativeType` a filled reference name slot is read first
and the `NativeType` slot otherwise (`FieldType.references`). A type the catalogue cannot place
can be given a slot per mapping (`ploomes.field_type_slots`).
No HTTP here and no frames: the catalogue in, a `FieldType` per mapped key out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["string", "integer", "decimal", "datetime", "bool", "reference"]

# NativeType -> how its slot's value is typed (C [S3]).
NATIVE_KINDS: dict[str, Kind] = {
    "String": "string",
    "BigString": "string",
    "Integer": "integer",
    "Decimal": "decimal",
    "DateTime": "datetime",
    "Bool": "bool",
    "Boolean": "bool",  # (I) spelling variant, read the same way
}
OPTION_LIST_TYPE_ID = 7  # C [S2]: values in ObjectValueId / ObjectValueName
# §7, C [S3][S10]: the slots holding a reference's text, read before a field's NativeType slot when
# filled (an option list outside TypeId 7, a user, a product, an attachment, a contact).
REFERENCE_NAME_SLOTS = (
    "ObjectValueName",
    "UserValueName",
    "ProductValueName",
    "AttachmentValueName",
    "ContactValueName",
)
VALUE_SLOTS = [
    "StringValue",
    "BigStringValue",
    "IntegerValue",
    "DecimalValue",
    "DateTimeValue",
    "BoolValue",
    "ObjectValueId",
    "ObjectValueName",
    "UserValueId",
    "UserValueName",
    "ProductValueId",
    "ProductValueName",
    "AttachmentValueId",
    "AttachmentValueName",
    "ContactValueId",
    "ContactValueName",
]
NAME_SLOTS = {s for s in VALUE_SLOTS if s.endswith("ValueName")}


class FieldTypeError(ValueError):
    """A mapped field whose value slot cannot be told from the catalogue."""


@dataclass(frozen=True)
class FieldType:
    key: str
    name: str
    slot: str  # the OtherProperties item key holding the value
    kind: Kind  # how the value is typed for CustomerX
    # a filled REFERENCE_NAME_SLOTS slot of an item wins over `slot` (read as a reference's text)
    references: bool = False


def field_type(definition: dict[str, Any], type_slots: dict[int, str] | None = None) -> FieldType:
    """The slot and kind of one `/Fields` item (expanded with `Type`), from its structure only.

    Order: the mapping's per-TypeId override, option lists (TypeId 7 or an options table), then
    the type's `NativeType`, with a reference name slot filled in the item read first (a user
    field fills `UserValueName`, whatever its `NativeType` and whatever its type is called).
    Anything else raises: the type's display name is never read.
    """
    key = str(definition.get("Key") or "")
    name = str(definition.get("Name") or definition.get("Label") or key)
    nav = definition.get("Type") if isinstance(definition.get("Type"), dict) else {}
    type_id = definition.get("TypeId", nav.get("Id"))
    native = nav.get("NativeType") or definition.get("NativeType")
    slot = (type_slots or {}).get(int(type_id)) if isinstance(type_id, int) else None
    if slot is not None:
        return FieldType(key, name, slot, _kind_of_slot(slot))
    if type_id == OPTION_LIST_TYPE_ID or definition.get("OptionsTableId") or definition.get("OptionsTable"):
        return FieldType(key, name, "ObjectValueName", "reference")
    if native in NATIVE_KINDS:
        slot = "BoolValue" if NATIVE_KINDS[native] == "bool" else f"{native}Value"
        return FieldType(key, name, slot, NATIVE_KINDS[native], references=True)
    raise FieldTypeError(
        f"field {key!r} ({name}) has TypeId {type_id!r}, type name {nav.get('Name')!r} and NativeType "
        f"{native!r}: no known value slot. Set ploomes.field_type_slots: {{{type_id}: <slot>}} in the "
        f"mapping, <slot> one of {', '.join(VALUE_SLOTS)}"
    )


def _kind_of_slot(slot: str) -> Kind:
    if slot in NAME_SLOTS or slot.endswith("ValueId"):
        return "reference"
    native = slot.removesuffix("Value")
    if native in NATIVE_KINDS:
        return NATIVE_KINDS[native]
    raise FieldTypeError(
        f"{slot!r} is not an OtherProperties value slot; use one of {', '.join(VALUE_SLOTS)}"
    )


def catalogue_types(
    catalogue: list[dict[str, Any]], keys: set[str], type_slots: dict[int, str] | None = None
) -> tuple[dict[str, FieldType], list[str]]:
    """Types of the `keys` the mapping reads, and one problem line per key that cannot be read."""
    by_key = {str(f.get("Key")): f for f in catalogue}
    types: dict[str, FieldType] = {}
    problems: list[str] = []
    for key in sorted(keys):
        definition = by_key.get(key)
        if definition is None:
            continue  # reported by the catalogue check, with the list of keys the account has
        try:
            types[key] = field_type(definition, type_slots)
        except FieldTypeError as exc:
            problems.append(str(exc))
    return types, problems


# SQL that turns the JSON value of a slot into a JSON value typed as CustomerX should get it:
# dates as ISO dates (the value's own local date), numbers as numbers, booleans as booleans.
TYPED_SQL: dict[Kind, str] = {
    "string": "to_json(nullif(trim(json_extract_string(v, '$')), ''))",
    "reference": "to_json(nullif(trim(json_extract_string(v, '$')), ''))",
    "integer": "to_json(try_cast(try_cast(json_extract_string(v, '$') as double) as bigint))",
    "decimal": "to_json(try_cast(json_extract_string(v, '$') as double))",
    "bool": "to_json(try_cast(json_extract_string(v, '$') as boolean))",
    "datetime": "to_json(strftime(try_cast(json_extract_string(v, '$')[1:10] as date), '%Y-%m-%d'))",
}


def attribute_text(value: Any) -> str:
    """How a typed value travels as a CustomerX custom attribute (values are strings, C [S2])."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
