"""Values the sandbox CustomerX API checks and stores: its refusal, custom attributes in every shape
seen (customerx-api.md §8.6), phone digits for the (phone, client) rule, its timestamps, and the
list filters it applies."""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any


class Refused(Exception):
    def __init__(self, status: int, errors: dict[str, list[str]], message: str) -> None:
        super().__init__(message)
        self.status, self.errors, self.message = status, errors, message


def _custom_attributes(value: Any) -> list[dict[str, Any]]:
    """Accept every shape seen (§8.6) and store `{name, label, value}` with string values."""
    if value is None:
        return []
    if isinstance(value, dict):
        value = [{"name": k, "value": v} for k, v in value.items()]
    if not isinstance(value, list):
        raise Refused(422, {"custom_attributes": ["must be a list"]}, "custom_attributes is invalid")
    out = []
    for item in value:
        name = item.get("name") or item.get("label") or item.get("external_id")
        if not name:
            raise Refused(
                422,
                {"custom_attributes": ["each item needs name, label or external_id"]},
                "custom_attributes is invalid",
            )
        raw = item.get("value")
        out.append({"name": name, "label": name, "value": None if raw is None else str(raw)})
    return out


def _phone_digits(phone: Any) -> str:
    number = phone.get("number") if isinstance(phone, dict) else phone
    return "".join(c for c in str(number or "") if c.isdigit())


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# List filters, per resource, exactly those customerx-api.md lists: clients §8.1
# (`external_id_client` C [S4]; `id`, `company_name`, `trading_name`, `cnpj_cpf`,
# `contract_status` LOW [S9]), contacts §8.2 (`client_id`, `external_id_client`, `email` LOW
# [S9]); contracts and timelines none. Any other query parameter is ignored, as
# a server ignores what it does not know (I): the list answers unfiltered, so a client that
# trusts a filter the API lacks shows up in the tests.
FILTERS = {
    "clients": ("id", "external_id_client", "cnpj_cpf", "company_name", "trading_name", "contract_status"),
    "contacts": ("client_id", "external_id_client", "email"),
    "contracts": (),
    "timelines": (),
}
# `created_at` / `updated_at` as YYYY-MM-DD, listed for clients (§8.1, C [S3]). What they select
# is not documented (I): records of that day or later, as the incremental tap that sends them
# reads them.
DATE_FILTERS = {"clients": ("created_at", "updated_at")}


def filtered(
    resource: str, rows: list[dict[str, Any]], query: dict[str, str], ignored: Collection[str]
) -> list[dict[str, Any]]:
    """The rows a list with `query` answers. Exact match on what the record holds, as a database
    column compares; e-mails case-insensitively (I: CustomerX keeps them unique in any case, §8.2)."""
    for key in DATE_FILTERS.get(resource, ()):
        if query.get(key) and key not in ignored:
            rows = [r for r in rows if str(r.get(key) or "")[:10] >= query[key]]
    for key in FILTERS[resource]:
        if key in query and key not in ignored:
            fold = str.lower if key == "email" else str
            rows = [r for r in rows if fold(str(r.get(key))) == fold(query[key])]
    return rows
