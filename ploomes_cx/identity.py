"""One identity rule: when two records are the same, for dedupe, adoption and the staging check.

The contract (mapping-and-cli.md §1, `identifiers`): two records whose valid CPF/CNPJ differ are
never the same record, whatever the identifier order (a document is a legal identity; two
companies may share an accountant's e-mail). Otherwise, the first identifier of the mapping's
list that both records have decides: equal values, same record; different values, different
records; none in common, nothing says they are the same.

The rule compares normalized values only, so a CustomerX record is put through the same
normalizers as a Ploomes one before it is compared (`customerx_identity`): a CustomerX client's
external id is what its "Código" holds, and that is what a Ploomes external code is compared with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ploomes_cx.staging.normalize import normalize_codes, normalize_documents, normalize_emails

IDENTIFIER_COLUMNS = {"cnpj_cpf": "document", "external_code": "external_code", "email": "email"}


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and value != value)


def same_record(a: Mapping[str, Any], b: Mapping[str, Any], identifiers: list[str]) -> bool:
    """Whether two records (normalized values by column: document, external_code, email) are one."""
    columns = ["document", *(IDENTIFIER_COLUMNS[i] for i in identifiers)]
    values = [[_or_none(r.get(c)) for r in (a, b)] for c in columns]
    return same_in_columns(values[0], values[1:], 0, 1)


def _or_none(value: Any) -> Any:
    return value if _present(value) else None


def same_in_columns(documents: Sequence[Any], ordered: Sequence[Sequence[Any]], a: int, b: int) -> bool:
    """`same_record` of rows `a` and `b` of column-wise values, absent values None: `documents`,
    then each identifier's column in the mapping's order. Deduplication asks this a few hundred
    thousand times per million records, so it indexes lists instead of building records."""
    da, db = documents[a], documents[b]
    if da is not None and db is not None and da != db:
        return False
    for values in ordered:
        va, vb = values[a], values[b]
        if va is not None and vb is not None:
            return bool(va == vb)
    return False


def _codes(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Each row's value as an integer code, -1 where absent, so pairs compare as numbers."""
    if column not in frame:
        return np.full(len(frame), -1)
    values = frame[column].astype(object)
    return pd.factorize(values.where(values.notna(), None), use_na_sentinel=True)[0]


def _same_block(codes: dict[str, np.ndarray], rows: slice, identifiers: list[str]) -> np.ndarray:
    """`same_record` of rows[`rows`] against every row: a (block x n) boolean matrix."""
    doc = codes["document"]
    a, b = doc[rows][:, None], doc[None, :]
    result = ~((a >= 0) & (b >= 0) & (a != b))
    undecided = np.ones_like(result)
    decided_same = np.zeros_like(result)
    for ident in identifiers:
        c = codes[IDENTIFIER_COLUMNS[ident]]
        a, b = c[rows][:, None], c[None, :]
        both = (a >= 0) & (b >= 0) & undecided
        decided_same |= both & (a == b)
        undecided &= ~both
    return result & decided_same


def any_same_record(frame: pd.DataFrame, identifiers: list[str], block: int = 1024) -> bool:
    """Whether any two rows of `frame` are the same record, in blocks of rows so memory stays
    bounded: an accountant's e-mail shared by thousands of companies is millions of pairs, too
    many for a Python loop and too many for one matrix."""
    codes = {c: _codes(frame, c) for c in IDENTIFIER_COLUMNS.values()}
    for start in range(0, len(frame), block):
        rows = slice(start, min(start + block, len(frame)))
        found = _same_block(codes, rows, identifiers)
        found[np.arange(rows.stop - rows.start), np.arange(rows.start, rows.stop)] = False  # a row and itself
        if found.any():
            return True
    return False


def customerx_identities(records: list[Mapping[str, Any]], ext_key: str) -> list[dict[str, Any]]:
    """CustomerX records' identifiers, normalized exactly as staging normalizes Ploomes ones."""
    documents = pd.Series([r.get("cnpj_cpf") or r.get("document") for r in records], dtype=object)
    emails = pd.Series([r.get("email") for r in records], dtype=object)
    codes = pd.Series([r.get(ext_key) for r in records], dtype=object)
    frame = pd.DataFrame(
        {
            "document": normalize_documents(documents)["document"],
            "email": normalize_emails(emails)["email"],
            "external_code": normalize_codes(codes)["external_code"],
        }
    ).astype(object)
    return frame.where(frame.notna(), None).to_dict("records")


class CustomerXIndex:
    """Existing CustomerX records of one entity, looked up the way the identity rule compares.

    `owners`: CustomerX id -> our external id holding it (the crosswalk, and what this run
    adopted or created). A record held by one of our records is never adopted by another one,
    except by the survivor its holder was merged into.
    """

    def __init__(self, rows: list[dict[str, Any]], ext_key: str, owners: dict[int, str]) -> None:
        self.ext_key = ext_key
        self.owners = dict(owners)
        self.by_ext: dict[str, dict[str, Any]] = {}
        self.identities: dict[int, dict[str, Any]] = {}
        self.by: dict[str, dict[Any, list[dict[str, Any]]]] = {c: {} for c in IDENTIFIER_COLUMNS.values()}
        for row, identity in zip(rows, customerx_identities(rows, ext_key), strict=True):
            self.identities[id(row)] = identity
            if row.get(ext_key):
                self.by_ext[str(row[ext_key])] = row
            for column, value in identity.items():
                if _present(value):
                    self.by[column].setdefault(value, []).append(row)

    def claim(self, customerx_id: int | None, external_id: str) -> None:
        if customerx_id is not None:
            self.owners[int(customerx_id)] = external_id

    def match(
        self, external_id: str, ours: Mapping[str, Any], identifiers: list[str], aliases: list[str] = ()
    ) -> tuple[dict[str, Any] | None, str | None]:
        """The CustomerX record to adopt for our record, or None; and why a match was passed over.

        A record already carrying our external id is ours (left by a killed run), and one carrying
        the external id of a record merged into ours is ours too. Otherwise the mapping's
        identifiers are tried in order, and a candidate is taken only when the identity rule says
        it is the same record and no other record of ours holds it.
        """
        for ext in (external_id, *aliases):
            own = self.by_ext.get(ext)
            if own is not None:
                return own, None
        mine = {external_id, *aliases}
        passed_over: str | None = None
        for ident in identifiers:
            column = IDENTIFIER_COLUMNS[ident]
            value = ours.get(column)
            if not _present(value):
                continue
            for candidate in self.by[column].get(value, []):
                if not same_record(ours, self.identities[id(candidate)], identifiers):
                    continue
                holder = self.owners.get(candidate.get("id"))
                if holder is not None and holder not in mine:
                    passed_over = (
                        f"CustomerX record {candidate.get('id')} matches by {ident} but our record "
                        f"{holder} holds it"
                    )
                    continue
                return candidate, None
        return None, passed_over
