"""What CustomerX accepts: request bodies built from staging rows.

Field names follow customerx-api.md §8 (C where seen in
public code; custom attributes use the `{label, value}` form the update call was seen with).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import pandas as pd

from ploomes_cx.mapping import Mapping
from ploomes_cx.ploomes.fields import attribute_text


def _value(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT:
        return None
    if isinstance(v, pd.Timestamp | dt.datetime):
        return v.isoformat()
    return v


def _date_br(v: Any) -> str | None:
    """CustomerX business dates are DD/MM/YYYY (§3)."""
    v = _value(v)
    return None if v is None else dt.datetime.fromisoformat(str(v)).strftime("%d/%m/%Y")


def _custom(text: Any, m: Mapping, entity: str) -> list[dict[str, str]]:
    """Every attribute the mapping sends for `entity`, `""` where Ploomes holds no value.

    Whether CustomerX replaces the attribute list on an update or merges it by name is not
    documented (customerx-api.md §8.6, I); §3 promises only that a key sent as `""` is cleared.
    Leaving an emptied field out is right only under `replace`: under `merge` CustomerX would keep
    the old value forever. Sending it as `""` clears it under both, and as the body's hash covers
    it, an unchanged record still costs no write."""
    attrs = json.loads(text) if isinstance(text, str) and text else {}
    names = {f.customerx for f in getattr(m.custom_fields, entity, [])} | set(attrs)
    return [{"label": k, "value": attribute_text(attrs[k]) if k in attrs else ""} for k in sorted(names)]


def _phones(e164: Any) -> list[dict[str, Any]]:
    e164 = _value(e164)
    if not e164:
        return []
    ddi, number = ("+55", e164[3:]) if e164.startswith("+55") else ("", e164)
    return [{"number": number, "is_default": True, "ddi": ddi}]


def client_body(row: dict[str, Any], m: Mapping) -> dict[str, Any]:
    return {
        "external_id_client": row["external_id"],
        "company_name": _value(row.get("legal_name")) or row["name"],
        "trading_name": row["name"],
        "cnpj_cpf": _value(row.get("document")),  # null, never an invalid document
        "email": _value(row.get("email")),
        "custom_attributes": _custom(row.get("custom_attributes"), m, "clients"),
    }


def contact_body(row: dict[str, Any], m: Mapping) -> dict[str, Any]:
    return {
        "external_id_contact": row["external_id"],
        "external_id_client": row["client_external_id"],
        "name": row["name"],
        "email": _value(row.get("email")),
        "document": _value(row.get("document")),
        "phones": _phones(row.get("phone")),
        "custom_attributes": _custom(row.get("custom_attributes"), m, "contacts"),
    }


def contract_body(row: dict[str, Any], m: Mapping) -> dict[str, Any]:
    title = _value(row.get("title")) or ""
    product = _value(row.get("product_name"))
    return {
        "external_id_contract": row["external_id"],
        "external_id_client": row["client_external_id"],
        "description": f"{title} — {product}" if product else title,
        "contract_value": round(float(row["value"]), 2),
        "date_sale": _date_br(row.get("sale_date")),
        "start_date": _date_br(row.get("sale_date")),
        "custom_attributes": _custom(row.get("custom_attributes"), m, "contracts"),
    }


def timeline_body(row: dict[str, Any], m: Mapping) -> dict[str, Any]:
    return {
        "external_id_client": row["client_external_id"],
        "title": _value(row.get("title")) or row["kind"],
        "body": "\n".join(x for x in (_value(row.get("body")), _value(row.get("url"))) if x),
        "created_at": _value(row.get("occurred_at")),
        "operation": m.customerx.timeline_operation,
    }


def cancel_body(row: dict[str, Any], m: Mapping) -> dict[str, Any]:
    """`POST /cancel_contracts` for a contract whose deal is no longer won (fields I, §8.3)."""
    return _cancel(
        row["external_id"],
        _date_br(row.get("status_changed_at")),
        f"Negócio {row['ploomes_id']} não está mais ganho no Ploomes",
    )


def gone_cancel_body(ext: str, when: dt.date, why: str) -> dict[str, Any]:
    """`POST /cancel_contracts` for a contract whose deal or client is gone from Ploomes (§4.2)."""
    return _cancel(ext, when.strftime("%d/%m/%Y"), f"Excluído no Ploomes: {why}")


def _cancel(ext: str, date_br: str | None, reason: str) -> dict[str, Any]:
    return {"external_id_contract": ext, "cancellation_date": date_br, "cancellation_reason": reason}


def reactivate_body(ext: str, when: Any) -> dict[str, Any]:
    """`POST /contracts/reactivate_contract` for a deal won again (fields I, §8.3)."""
    return {"external_id_contract": ext, "reactivation_date": _date_br(when)}


BUILDERS = {
    "clients": client_body,
    "contacts": contact_body,
    "contracts": contract_body,
    "timeline": timeline_body,
}


def without_client_move(
    entity: str, body: dict[str, Any], held_by: str | None
) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """A contact's client cannot be changed once set (customerx-api.md §8.2, C [S2]): when the
    person moved to another company in Ploomes, the update leaves the client out and says so.

    Returns the body to send, the body CustomerX then holds (on the client it stays on: what the
    crosswalk must remember, or the next update would ask for the move again) and the note."""
    if entity != "contacts" or not held_by or str(held_by) == str(body.get("external_id_client")):
        return body, body, None
    kept = {k: v for k, v in body.items() if k != "external_id_client"}
    return (
        kept,
        {**body, "external_id_client": held_by},
        (
            f"client changed in Ploomes from {held_by} to {body.get('external_id_client')}; CustomerX does not "
            f"move a contact between clients, so it stays on {held_by}"
        ),
    )


def client_of(record: dict[str, Any]) -> str | None:
    """The external id of the client a CustomerX record belongs to, at the top level or nested
    (`client{external_id_client}`, customerx-api.md §8.2)."""
    return record.get("external_id_client") or (record.get("client") or {}).get("external_id_client")
