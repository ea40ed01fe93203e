"""What the API specs say, written out once for the tests (and the fidelity benchmark).

Independent of our product code on purpose: a test that compares our output with a list taken
from our own modules would agree with any mistake in them.
"""

from __future__ import annotations

from typing import Any

# ploomes-api.md §7: the typed value slots of an OtherProperties item.
VALUE_SLOTS = {
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
}
TYPED_SLOTS = ("StringValue", "BigStringValue", "IntegerValue", "DecimalValue", "DateTimeValue", "BoolValue")


def expected_text(item: dict[str, Any]) -> str | None:
    """What CustomerX must hold for one OtherProperties item: a reference's name, else the one
    typed slot filled, as the README's custom-field table says it is written (None: empty)."""
    for slot in ("ObjectValueName", "UserValueName"):
        if item.get(slot) is not None:
            return str(item[slot])
    for slot in TYPED_SLOTS:
        value = item.get(slot)
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            return "true" if value else "false"
        if slot == "DateTimeValue":
            return value[:10]
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)
    return None
