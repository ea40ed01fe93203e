"""A deterministic, seedable Brazilian CRM dataset for the sandbox Ploomes server.

Only a few integer columns per entity live in memory (numpy arrays: ids, parent ids, status,
change dates); every other field is rendered on demand from a per-record seeded RNG. That keeps a
million contacts in tens of megabytes and makes any record reproducible from (seed, entity, id).

The dirt is deliberate and documented so tests can rely on it: formatted vs bare vs invalid
CPF/CNPJ, upper-case and broken e-mails, missing names, accents, companies entered twice with small
differences (`twin_of`), records sharing a change date, and records stamped exactly at midnight.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ploomes_cx.sandbox.clock import ACCOUNT_TZ, to_ms
from ploomes_cx.sandbox.ploomes_render import Renderer


@dataclass
class Table:
    """Columnar index of one entity set; `cols` hold int64 (dates in epoch ms, 0 = null)."""

    name: str
    base_id: int
    cols: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.cols["Id"])

    def index_of(self, record_id: int) -> int:
        i = record_id - self.base_id
        if not 0 <= i < len(self):
            raise KeyError(record_id)
        return i


@dataclass
class PloomesDataset(Renderer):
    """The whole sandbox account. `persons` is the scale knob (1,000,000 fits in memory)."""

    persons: int = 2000
    seed: int = 42
    start: str = "2026-11-01"
    days: int = 14
    tables: dict[str, Table] = field(default_factory=dict)
    overrides: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    deleted: dict[tuple[str, int], int] = field(default_factory=dict)  # (entity, id) -> when, epoch ms
    # `OtherProperties` items carry every value slot, unused ones null, as Ploomes sends them (§7);
    # False serves only the filled slot, the other shape public clients show.
    all_slots: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._generate()

    # ---- generation of the columnar index -------------------------------------------------
    def _dates(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Change dates over `days` local days, with the collisions real CRMs have."""
        t0 = to_ms(dt.datetime.fromisoformat(self.start).replace(tzinfo=ACCOUNT_TZ))
        span = self.days * 86_400_000
        ms = t0 + rng.integers(0, span, n)
        minute = rng.random(n) < 0.25  # saved by a person: whole-second stamps collide
        ms[minute] -= ms[minute] % 60_000
        batch = rng.random(n) < 0.04  # a bulk import: one stamp for many records
        ms[batch] = t0 + 86_400_000 + 10 * 3_600_000 + 123
        midnight = rng.random(n) < 0.01  # exactly at a window edge
        ms[midnight] -= (ms[midnight] - t0) % 86_400_000
        return ms.astype(np.int64)

    def _generate(self) -> None:
        """Draw every table from one seeded generator, always in the same order."""
        rng = np.random.default_rng(self.seed)
        p = max(1, self.persons)
        o = max(1, p // 4)
        d = max(1, p // 2)
        self._generate_contacts(rng, o, p)
        contact, deal_ids = self._generate_deals(rng, o, p, d)
        self._generate_timeline(rng, p, d, contact, deal_ids)

    def _generate_contacts(self, rng: np.random.Generator, o: int, p: int) -> None:
        orgs_ids = np.arange(o, dtype=np.int64)
        # Contacts: organizations first, then persons (TypeId 1 / 2).
        n_contacts = o + p
        type_id = np.concatenate([np.ones(o, np.int64), np.full(p, 2, np.int64)])
        company = np.concatenate([np.zeros(o, np.int64), 1000 + rng.choice(orgs_ids, p)])
        company[o:][rng.random(p) < 0.08] = 0  # persons with no company
        lud = self._dates(rng, n_contacts)
        create = lud - rng.integers(0, 400 * 86_400_000, n_contacts)
        self.n_orgs = o
        self.tables["contacts"] = Table(
            "contacts",
            1000,
            {
                "Id": np.arange(1000, 1000 + n_contacts, dtype=np.int64),
                "TypeId": type_id,
                "CompanyId": company,
                "LastUpdateDate": lud,
                "CreateDate": create,
            },
        )

    def _generate_deals(
        self, rng: np.random.Generator, o: int, p: int, d: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Deals with their quotes and orders; returns each deal's contact id and the deal ids."""
        orgs_ids = np.arange(o, dtype=np.int64)
        # Deals: contact is an organization (80%) or a person; status 1 open, 2 won, 3 lost.
        contact = np.where(
            rng.random(d) < 0.8, 1000 + rng.choice(orgs_ids, d), 1000 + o + rng.integers(0, p, d)
        )
        person = np.where(rng.random(d) < 0.7, 1000 + o + rng.integers(0, p, d), 0)
        status = rng.choice(np.array([1, 2, 3], np.int64), d, p=[0.5, 0.35, 0.15])
        lud = self._dates(rng, d)
        deal_ids = (
            np.arange(500_000, 500_000 + d, dtype=np.int64)
            if d < 500_000
            else np.arange(5_000_000, 5_000_000 + d, dtype=np.int64)
        )
        finish = np.where(status > 1, lud - rng.integers(0, 3_600_000, d), 0)
        has_quote = rng.random(d) < 0.6
        has_order = (status == 2) & (rng.random(d) < 0.8)
        quote_ids = np.where(has_quote, 0, 0)
        order_ids = np.where(has_order, 0, 0)
        nq, no = int(has_quote.sum()), int(has_order.sum())
        quote_ids[has_quote] = np.arange(70_000_000, 70_000_000 + nq)
        order_ids[has_order] = np.arange(80_000_000, 80_000_000 + no)
        self.tables["deals"] = Table(
            "deals",
            int(deal_ids[0]),
            {
                "Id": deal_ids,
                "ContactId": contact,
                "PersonId": person,
                "StatusId": status,
                "LastUpdateDate": lud,
                "CreateDate": lud - rng.integers(0, 90 * 86_400_000, d),
                "FinishDate": finish,
                "LastQuoteId": quote_ids,
                "LastOrderId": order_ids,
            },
        )
        for name, ids, mask, base in (
            ("quotes", quote_ids, has_quote, 70_000_000),
            ("orders", order_ids, has_order, 80_000_000),
        ):
            n = int(mask.sum())
            self.tables[name] = Table(
                name,
                base,
                {
                    "Id": ids[mask].astype(np.int64),
                    "DealId": deal_ids[mask],
                    "ContactId": contact[mask],
                    "LastUpdateDate": lud[mask],
                    "CreateDate": lud[mask] - 3_600_000,
                },
            )
            assert len(self.tables[name]) == n
        return contact, deal_ids

    def _generate_timeline(
        self, rng: np.random.Generator, p: int, d: int, contact: np.ndarray, deal_ids: np.ndarray
    ) -> None:
        n_contacts = self.n_orgs + p
        # Timeline: notes (InteractionRecords), tasks, attachments (CreateDate only).
        for name, n, base in (
            ("notes", p // 2, 30_000_000),
            ("tasks", p // 2, 40_000_000),
            ("attachments", max(1, p // 5), 60_000_000),
        ):
            n = max(1, n)
            on_deal = rng.random(n) < 0.4
            deal_pick = rng.integers(0, d, n)
            c = np.where(on_deal, contact[deal_pick], 1000 + rng.integers(0, n_contacts, n))
            cols = {
                "Id": np.arange(base, base + n, dtype=np.int64),
                "ContactId": c,
                "DealId": np.where(on_deal, deal_ids[deal_pick], 0),
            }
            dates = self._dates(rng, n)
            if name == "attachments":
                cols["CreateDate"] = dates
            else:
                cols["LastUpdateDate"] = dates
                cols["CreateDate"] = dates - rng.integers(0, 30 * 86_400_000, n)
            self.tables[name] = Table(name, base, cols)

    # ---- lookups used by the server ------------------------------------------------------
    def twin_of(self, contact_id: int) -> int | None:
        """The earlier contact this one re-enters (the same company or person typed in twice), or None.

        Every 29th organization and every 41st person after the first few is such a twin.
        """
        i = contact_id - 1000
        if i < self.n_orgs:
            step, first = 29, 0
        else:
            step, first = 41, self.n_orgs
            i -= first
        if i >= 10 and i % step == 0:
            j = (i // 3 + 17 + (i * 31) % 97) % i  # an earlier record, different for every twin
            return 1000 + first + (j - 1 if j >= 10 and j % step == 0 else j)
        return None

    def expected_ids(self, entity: str, start: dt.datetime, end: dt.datetime) -> list[int]:
        """Ground truth for tests and benchmarks: ids of our `entity` whose change date is in [start, end)."""
        table_name, type_id = {"organizations": ("contacts", 1), "persons": ("contacts", 2)}.get(
            entity, (entity, None)
        )
        table = self.tables[table_name]
        stamps = table.cols["LastUpdateDate" if "LastUpdateDate" in table.cols else "CreateDate"]
        mask = (stamps >= to_ms(start)) & (stamps < to_ms(end))
        if type_id is not None:
            mask &= table.cols["TypeId"] == type_id
        return [int(i) for i in table.cols["Id"][mask]]

    def touch(
        self, entity: str, record_id: int, changes: dict[str, Any] | None = None, when_ms: int | None = None
    ) -> None:
        """Change a record as a CRM user would: new field values and a new LastUpdateDate."""
        table = self.tables[entity]
        i = table.index_of(record_id)
        date_col = "LastUpdateDate" if "LastUpdateDate" in table.cols else "CreateDate"
        with self.lock:
            if changes:
                self.overrides.setdefault((entity, record_id), {}).update(changes)
            table.cols[date_col][i] = when_ms if when_ms is not None else to_ms(dt.datetime.now(ACCOUNT_TZ))

    def delete(self, entity: str, record_id: int, when_ms: int | None = None) -> None:
        """Delete a record as a CRM user would: it vanishes from every list (ploomes-api.md §9)."""
        self.tables[entity].index_of(record_id)  # KeyError for an unknown id
        with self.lock:
            self.deleted[(entity, record_id)] = (
                when_ms if when_ms is not None else to_ms(dt.datetime.now(ACCOUNT_TZ))
            )

    def deleted_ids(self, entity: str) -> list[int]:
        return [i for (e, i) in self.deleted if e == entity]

    def set_date(self, entity: str, record_id: int, column: str, when_ms: int) -> None:
        table = self.tables[entity]
        with self.lock:
            table.cols[column][table.index_of(record_id)] = when_ms
