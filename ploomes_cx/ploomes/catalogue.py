"""The account's field catalogue (`/Fields`) held against a mapping: every mapped custom field and
the external code field must exist and belong to the Ploomes entity its table is read from."""

from __future__ import annotations

from typing import Any

from ploomes_cx.mapping import Mapping
from ploomes_cx.ploomes.fields import catalogue_types
from ploomes_cx.ploomes.payloads import CONTACT_ENTITY, DEAL_ENTITY, ORDER_ENTITY


def is_custom(field: dict[str, Any]) -> bool:
    """Custom fields are keyed `<entity>_<GUID>`; native ones by a plain name."""
    return str(field.get("Key", "")).count("-") >= 4


def check_custom_fields(m: Mapping, catalogue: list[dict[str, Any]]) -> list[str]:
    """Problems with the mapping's custom-field keys against the account's `/Fields`."""
    by_key = {f.get("Key"): f for f in catalogue}
    contract_entities = {DEAL_ENTITY} if m.contracts.source == "won_deals" else {DEAL_ENTITY, ORDER_ENTITY}
    wanted = {"clients": {CONTACT_ENTITY}, "contacts": {CONTACT_ENTITY}, "contracts": contract_entities}
    problems = []
    for entity, allowed in wanted.items():
        for n, cf in enumerate(getattr(m.custom_fields, entity)):
            where = f"custom_fields.{entity}[{n}].ploomes"
            field = by_key.get(cf.ploomes)
            if field is None:
                problems.append(f"{where}: {cf.ploomes!r} is not a field of this Ploomes account")
            elif field.get("EntityId") not in allowed:
                problems.append(
                    f"{where}: {cf.ploomes!r} belongs to Ploomes entity {field.get('EntityId')}, "
                    f"but {entity} are read from entity {sorted(allowed)}"
                )
    if m.uses_external_code_custom_field:
        field = by_key.get(m.external_code_field)
        if field is None or field.get("EntityId") != CONTACT_ENTITY:
            problems.append(
                f"external_code_field: {m.external_code_field!r} is neither Key nor a contact field "
                "of this Ploomes account"
            )
    problems += catalogue_types(catalogue, m.read_field_keys, m.ploomes.field_type_slots)[1]
    if problems:
        known = sorted(
            k
            for k, f in by_key.items()
            if k and "_" in k and f.get("EntityId") in (CONTACT_ENTITY, DEAL_ENTITY, ORDER_ENTITY)
        )
        problems.append(f"fields of this account: {', '.join(known[:40])}")
    return problems
