"""Finding the CustomerX record that carries our external id, after a create went wrong.

A create refused with a 409 or a 422 may have met a record already carrying our id — made by a
POST of ours whose answer was lost, or by another integration of the same account in the same
minute — and CustomerX's error text is not to be read (customerx-api.md §6). So the record is
looked for by our external id. The list filter by external id is inferred for contacts and
contracts (§8.2, §8.3): a server that ignores it answers the whole list. Then that listing is
kept for the load and read again only when a record is not in it, at most `MAX_LISTINGS` times a
load: a record refused after that stays refused in this run, and the next sync's adoption finds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ploomes_cx.customerx.client import CallStats, CustomerXApi
from ploomes_cx.customerx.endpoints import RESOURCES

MAX_LISTINGS = 5


@dataclass
class OwnIdLookup:
    api: CustomerXApi
    entity: str
    stats: CallStats
    _listing: dict[str, dict[str, Any]] | None = None
    _listings: int = 0

    def find(self, ext: str) -> dict[str, Any] | None:
        """The record carrying `ext`, or None."""
        if self._listing is not None and (ext in self._listing or self._listings >= MAX_LISTINGS):
            return self._listing.get(ext)
        ops = RESOURCES[self.entity]
        key = ops.external_id_field
        rows = list(self.api.list_all(ops.list, params={key: ext}, stats=self.stats))
        if any(str(r.get(key)) != ext for r in rows):  # the filter was ignored: the whole list
            self._listing = {str(r.get(key)): r for r in rows if r.get(key)}
            self._listings += 1
        return next((r for r in rows if str(r.get(key)) == ext), None)
