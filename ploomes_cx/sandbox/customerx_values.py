"""Values the sandbox CustomerX API checks and stores: its refusal, custom attributes in every shape
seen (customerx-api.md §8.6), phone digits for the (phone, client) rule, its timestamps."""

from __future__ import annotations

import time
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
