"""Which existing CustomerX record a new record of ours is, found with the fewest requests.

A record the crosswalk does not know may already be in CustomerX: made by hand, by another
integration, or by a run of ours that was killed before it could say so. The identity rule
(identity.CustomerXIndex) decides; this module decides what it reads to give the rule its
candidates, per entity and load step:

- `listing`: every record of the entity (one request per 20). Taken while the crosswalk may be
  missing records CustomerX holds (a mapping's first loads, or a crosswalk that lost its rows),
  and otherwise when it costs fewer requests than the lookups. Stored (load/listing.py), so it
  happens at most once per `sync` command;
- `stored`: the listing an earlier window of the same `sync` command took: no request;
- `lookup`: per new record, the list filtered by each identifier it has (clients: `?cnpj_cpf=` in
  its bare and its masked form, `?external_id_client=` for the code and for its own external id
  when a killed run may have created it; contacts: `?email=`), only with the filters the spec
  lists (customerx/endpoints.py LOOKUP_PARAMS). A record with an identifier no filter reaches
  sends the load to the listing. The filters are partly inferred, so every answer is checked: a
  row that does not carry the value asked for, a refusal, or more than one page means the filter
  is not honoured, and the load lists instead.

The choice is made by counting both costs before the first request, and reported in the load
asset's metadata (`adoption`). `customerx.adoption: listing` always lists; `lookup` looks up once
the first loads are done, whenever every new record can be looked up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import duckdb

from ploomes_cx.customerx.client import CallStats, CustomerXApi, CustomerXRejected
from ploomes_cx.customerx.endpoints import LOOKUP_PARAMS, RESOURCES
from ploomes_cx.identity import IDENTIFIER_COLUMNS, CustomerXIndex, customerx_identities
from ploomes_cx.load import ledger, listing
from ploomes_cx.mapping import Mapping

PAGE = 20  # CustomerX's page size and maximum (customerx-api.md §4)

# (identity column compared, or "own" for our external id; filter; value sent; value expected)
Query = tuple[str, str, str, str]


class FilterNotHonoured(Exception):
    """A filtered list answered with records that do not carry the value asked for."""


def document_forms(document: str) -> list[str]:
    """A normalized CPF/CNPJ as CustomerX may hold it: bare, and with its usual mask."""
    d = document
    if len(d) == 14:
        return [d, f"{d[:2]}.{d[2:5]}.{d[5:8]}/{d[8:12]}-{d[12:]}"]
    if len(d) == 11:
        return [d, f"{d[:3]}.{d[3:6]}.{d[6:9]}-{d[9:]}"]
    return [d]


def aliases_of(row: dict[str, Any]) -> list[str]:
    """External ids of the records merged into this one (staging's `aliases`)."""
    return [a for a in str(row.get("aliases") or "").split(",") if a]


@dataclass
class Adoption:
    """One entity's adoption reads in one load step, and the report of what they cost."""

    m: Mapping
    entity: str
    api: CustomerXApi | None
    con: duckdb.DuckDBPyConnection
    sync_id: str
    stats: CallStats
    mode: str = "none"
    reason: str = "no new record"
    new_records: int = 0
    estimates: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    index: CustomerXIndex | None = None
    owners: dict[int, str] = field(default_factory=dict)
    pending: set[str] = field(default_factory=set)
    known: dict[str, ledger.Known] = field(default_factory=dict)

    @property
    def ext_key(self) -> str:
        return RESOURCES[self.entity].external_id_field

    def choose(self, new: list[tuple[str, dict[str, Any]]], known: dict[str, ledger.Known]) -> None:
        """Count what each way would cost for the records `new` (external id, staged row)."""
        self.owners = ledger.owners(self.con, self.m.name, self.entity)
        self.pending = {ext for ext, k in known.items() if k.state == "pending"}
        self.known = known
        self.new_records = len(new)
        if not new:
            return
        mark = listing.marker(self.con, self.m.name, self.entity)
        queries = [self.queries(ext, row) for ext, row in new]
        blind = sum(q is None for q in queries)
        total = max(mark.total if mark else 0, len(self.owners))
        lookups = sum(len(q) for q in queries if q is not None)
        self.estimates = {"listing": max(1, math.ceil(total / PAGE)), "lookup": lookups}
        if self.m.customerx.adoption == "listing":
            self.mode, self.reason = "listing", "customerx.adoption: listing"
        elif mark is not None and self.sync_id and mark.sync_id == self.sync_id:
            self.mode, self.reason = "stored", f"listed earlier in this sync command ({mark.total} records)"
        elif mark is None or not self.owners:
            self.mode = "listing"
            self.reason = "first load of this mapping: the crosswalk may be missing records CustomerX holds"
        elif blind:
            self.mode = "listing"
            self.reason = (
                f"{blind} new record(s) have an identifier CustomerX's {self.entity} list cannot be filtered "
                "by (customerx-api.md §8): only the listing gives the identity rule every candidate"
            )
        elif self.m.customerx.adoption == "lookup":
            self.mode, self.reason = "lookup", "customerx.adoption: lookup"
        elif lookups <= self.estimates["listing"]:
            self.mode = "lookup"
            self.reason = f"{lookups} lookups cost less than a listing of ~{total} records"
        else:
            self.mode = "listing"
            self.reason = f"a listing of ~{total} records costs less than {lookups} lookups"

    def queries(self, ext: str, row: dict[str, Any]) -> list[Query] | None:
        """The filtered reads that give the identity rule every candidate the listing would; None
        when the record has an identifier, or a doubt about its own creation, no filter reaches."""
        params = LOOKUP_PARAMS.get(self.entity, {})
        doubtful = [e for e in (ext, *aliases_of(row)) if e in self.pending]
        if doubtful and "own" not in params:
            return None
        found: list[Query] = [("own", params["own"], e, e) for e in doubtful]
        for ident in self.m.identifiers:
            column = IDENTIFIER_COLUMNS[ident]
            value = row.get(column)
            if value is None:
                continue
            if ident not in params:
                return None
            forms = document_forms(str(value)) if ident == "cnpj_cpf" else [str(value)]
            found += [(column, params[ident], form, str(value)) for form in forms]
        return found

    def claim(self, customerx_id: int | None, external_id: str) -> None:
        if customerx_id is not None:
            self.owners[int(customerx_id)] = external_id
        if self.index is not None:
            self.index.claim(customerx_id, external_id)

    def match(self, ext: str, row: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        """The CustomerX record our new record is (or None), and why a match was passed over.

        A record merged into ours that we sent is ours, at the CustomerX id the crosswalk holds:
        no read needed, and no listing taken before it landed can miss it. Our own record kept
        in CustomerX when it was merged away (`load/merges.py`) comes first: it survives again
        (the older record of the pair changed last), so it takes back its own record, whose
        external id no other record can take, and the other one is the merged-away one now."""
        own = self.known.get(ext)
        if own is not None and own.state == ledger.MERGED and own.customerx_id is not None:
            return {**(own.body or {}), "id": own.customerx_id, self.ext_key: ext}, None
        for alias in aliases_of(row):
            held = self.known.get(alias)
            if held is not None and held.state == "sent" and held.customerx_id is not None:
                return {**(held.body or {}), "id": held.customerx_id, self.ext_key: alias}, None
        index = self._index_for(ext, row)
        identity = {c: row.get(c) for c in IDENTIFIER_COLUMNS.values()}
        return index.match(ext, identity, self.m.identifiers, aliases_of(row))

    def carries_external_id(self, value: str) -> bool:
        """Whether some CustomerX record has `value` as its external id (unknown counts as yes)."""
        if self.index is not None and self.mode != "lookup":
            return value in self.index.by_ext
        own = LOOKUP_PARAMS.get(self.entity, {}).get("own")
        if own is None:
            return True
        try:
            return bool(self._lookup([("own", own, value, value)]))
        except FilterNotHonoured:
            return True

    def metadata(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "reason": self.reason,
            "new_records": self.new_records,
            "requests": self.requests,
            "estimated_requests": self.estimates,
        }

    def _index_for(self, ext: str, row: dict[str, Any]) -> CustomerXIndex:
        if self.mode == "lookup":
            try:
                rows = self._lookup(self.queries(ext, row) or [])
                return CustomerXIndex(rows, self.ext_key, self.owners)
            except FilterNotHonoured as exc:
                self.mode, self.reason = "listing", f"{exc}; listed every record instead"
        if self.index is None:
            self.index = CustomerXIndex(self._listing(), self.ext_key, self.owners)
        return self.index

    def _listing(self) -> list[dict[str, Any]]:
        if self.mode == "stored":
            return listing.rows(self.con, self.m.name, self.entity)
        assert self.api is not None, "a load that writes needs a CustomerX client"
        before = self.stats.requests
        rows = list(self.api.list_all(RESOURCES[self.entity].list, stats=self.stats))
        self.requests += self.stats.requests - before
        listing.save(self.con, self.m.name, self.entity, self.sync_id, rows)
        return rows

    def _lookup(self, queries: list[Query]) -> list[dict[str, Any]]:
        """The records the filtered reads return, each checked to carry the value asked for."""
        assert self.api is not None, "a load that writes needs a CustomerX client"
        found: dict[Any, dict[str, Any]] = {}
        for what, param, value, expected in queries:
            params = {param: value, "page": "1", "per_page": str(PAGE)}
            self.requests += 1
            try:
                rows, headers = self.api.call(RESOURCES[self.entity].list, params=params, stats=self.stats)
            except CustomerXRejected as exc:
                raise FilterNotHonoured(f"CustomerX refused ?{param}= (HTTP {exc.status})") from None
            rows = rows if isinstance(rows, list) else (rows or {}).get("data", [])
            if int(headers.get("X-Pages") or 1) > 1 or not self._all_carry(rows, what, expected):
                raise FilterNotHonoured(f"?{param}= on {self.entity} answered records without that value")
            found.update({r.get("id", id(r)): r for r in rows})
        return list(found.values())

    def _all_carry(self, rows: list[dict[str, Any]], what: str, expected: str) -> bool:
        if what == "own":
            return all(str(r.get(self.ext_key)) == expected for r in rows)
        return all(i.get(what) == expected for i in customerx_identities(rows, self.ext_key))
