"""Content hashes of request bodies: the hash decides whether a record changed since it was last
sent, so an unchanged record is never sent again; the diff is what a dry run shows."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def content_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def field_diff(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, list[Any]]:
    """Fields whose value would change: {field: [old, new]}."""
    old = old or {}
    return {k: [old.get(k), v] for k, v in new.items() if old.get(k) != v}
