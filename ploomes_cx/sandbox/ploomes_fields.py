"""The sandbox account's field catalogue (`/Fields`) and the `OtherProperties` items records carry,
in the shapes ploomes-api.md §6-§7 describe: every value slot present, the unused ones null."""

from __future__ import annotations

from typing import Any

from ploomes_cx.sandbox.brazil import SEGMENTS

FIELD_GUID = "0A1B2C3D-0000-0000-0000-0000000000{:02X}"


def field_key(entity: str, n: int) -> str:
    return f"{entity}_{FIELD_GUID.format(n)}"


# Field types of the sandbox account (`/Fields@Types`): TypeId -> (Name, NativeType). Only 7 (option
# list) and 18 (image) are known TypeIds (ploomes-api.md §6, C [S2]); the other ids are ours, so the
# pipeline must read the slot from `Type.NativeType` / the type's name, as it must on a real account.
FIELD_TYPES: dict[int, tuple[str, str]] = {
    1: ("Texto", "String"),
    2: ("Texto longo", "BigString"),
    4: ("Número inteiro", "Integer"),
    5: ("Data", "DateTime"),
    6: ("Número decimal", "Decimal"),
    7: ("Lista de opções", "Integer"),
    9: ("Usuário", "Integer"),
    10: ("Verdadeiro ou falso", "Bool"),
    18: ("Imagem", "String"),
}
# The types' display names as an account in English shows them (`field_type_names=en`); the names
# are the UI's, localised, so nothing may be decided from them (ploomes-api.md §6 says only that
# `Type` carries a `Name`). `renamed` names every type by its Id: any other language or wording.
ENGLISH_TYPE_NAMES = {
    1: "Text",
    2: "Long text",
    4: "Integer",
    5: "Date",
    6: "Decimal",
    7: "Option list",
    9: "User",
    10: "True or false",
    18: "Image",
}
CHANNELS = ["Indicação", "Inbound", "Outbound", "Evento"]
USERS = {100 + n: name for n, name in enumerate(["Ana Lima", "Bruno Reis", "Carla Dias", "Davi Rocha"])}
OPTION_TABLES = {1: SEGMENTS, 2: CHANNELS}


def option_id(table: int, position: int) -> int:
    return table * 100 + position + 1


# The custom-field catalogue (`/Fields`). EntityId 1 = contact, 2 = deal (ploomes-api.md §6).
# One field of every type on contacts, and a spread of them on deals.
CUSTOM_FIELDS: list[dict[str, Any]] = [
    {"Key": field_key("contact", 0x0A), "Name": "Segmento", "EntityId": 1, "TypeId": 7, "OptionsTableId": 1},
    {"Key": field_key("contact", 0x0B), "Name": "Número de funcionários", "EntityId": 1, "TypeId": 4},
    {"Key": field_key("contact", 0x0C), "Name": "Data de fundação", "EntityId": 1, "TypeId": 5},
    {"Key": field_key("contact", 0x0D), "Name": "Código ERP", "EntityId": 1, "TypeId": 1},
    {"Key": field_key("contact", 0x11), "Name": "Observações", "EntityId": 1, "TypeId": 2},
    {"Key": field_key("contact", 0x12), "Name": "Faturamento anual", "EntityId": 1, "TypeId": 6},
    {"Key": field_key("contact", 0x13), "Name": "Cliente ativo", "EntityId": 1, "TypeId": 10},
    {"Key": field_key("contact", 0x14), "Name": "Responsável CS", "EntityId": 1, "TypeId": 9},
    {"Key": field_key("deal", 0x0E), "Name": "Plano contratado", "EntityId": 2, "TypeId": 1},
    {"Key": field_key("deal", 0x0F), "Name": "Recorrente", "EntityId": 2, "TypeId": 10},
    {"Key": field_key("deal", 0x10), "Name": "Valor mensal", "EntityId": 2, "TypeId": 6},
    {"Key": field_key("deal", 0x15), "Name": "Data de renovação", "EntityId": 2, "TypeId": 5},
    {"Key": field_key("deal", 0x16), "Name": "Licenças", "EntityId": 2, "TypeId": 4},
    {"Key": field_key("deal", 0x17), "Name": "Canal", "EntityId": 2, "TypeId": 7, "OptionsTableId": 2},
]
FIELD_IDS = {f["Key"]: n for n, f in enumerate(CUSTOM_FIELDS, start=100)}
NATIVE_FIELDS: list[dict[str, Any]] = [
    {"Key": "contact_name", "Name": "Nome", "EntityId": 1, "TypeId": 1, "PropertyName": "Name"},
    {"Key": "contact_register", "Name": "CPF/CNPJ", "EntityId": 1, "TypeId": 1, "PropertyName": "Register"},
    {"Key": "contact_email", "Name": "E-mail", "EntityId": 1, "TypeId": 1, "PropertyName": "Email"},
    {"Key": "deal_title", "Name": "Título", "EntityId": 2, "TypeId": 1, "PropertyName": "Title"},
    {"Key": "deal_amount", "Name": "Valor", "EntityId": 2, "TypeId": 6, "PropertyName": "Amount"},
]
EMPTY_SLOTS: dict[str, Any] = {
    slot: None
    for slot in (
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
    )
}


def other_property(key: str, filled: dict[str, Any], all_slots: bool = True) -> dict[str, Any]:
    """One `OtherProperties` item as Ploomes sends it: every typed slot, the unused ones null (§7)."""
    item: dict[str, Any] = {"FieldKey": key, "FieldId": FIELD_IDS.get(key, 0)}
    if all_slots:
        item.update(EMPTY_SLOTS)
    item.update(filled)
    return item


def type_name(type_id: int, names: str = "pt") -> str:
    """A type's display name in the `field_type_names` reading: `pt`, `en` or `renamed`."""
    if names == "en":
        return ENGLISH_TYPE_NAMES[type_id]
    if names == "renamed":
        return f"Tipo {type_id}"
    return FIELD_TYPES[type_id][0]


def fields_catalogue(names: str = "pt") -> list[dict[str, Any]]:
    """`/Fields` items with their `Type` and `OptionsTable` navigations filled (the server drops
    them unless expanded): `Type {Id, Name, NativeType}`, `OptionsTable {Id, Options[{Id, Name}]}`;
    the types' names as the `field_type_names` reading `names` has them."""
    out = []
    for n, f in enumerate([*NATIVE_FIELDS, *CUSTOM_FIELDS], start=1):
        native = FIELD_TYPES[f["TypeId"]][1]
        table = f.get("OptionsTableId")
        out.append(
            {
                "Id": FIELD_IDS.get(f["Key"], n),
                "Key": f["Key"],
                "Name": f["Name"],
                "Label": f["Name"],
                "EntityId": f["EntityId"],
                "TypeId": f["TypeId"],
                "Type": {"Id": f["TypeId"], "Name": type_name(f["TypeId"], names), "NativeType": native},
                "OptionsTableId": table,
                "OptionsTable": None
                if table is None
                else {
                    "Id": table,
                    "Options": [
                        {"Id": option_id(table, i), "Name": name}
                        for i, name in enumerate(OPTION_TABLES[table])
                    ],
                },
                "PropertyName": f.get("PropertyName"),
                "Required": False,
                "Unique": False,
                "Hidden": False,
                "Multiple": False,
            }
        )
    return sorted(out, key=lambda f: f["Id"])
