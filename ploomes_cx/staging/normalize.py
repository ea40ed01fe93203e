"""Vectorized normalizers for the identifiers and contact data of dirty CRM records.

Each function takes a pandas Series of raw values and returns a frame with the normalized value
and a `*_reason` column: a value either normalizes, or keeps its original next to a reason, and no
input raises. They are vectorized because they run over every contact of an account (a million
rows must clean in seconds); where a well-kept library exists it is the oracle the property tests
compare against (python-stdnum for CPF/CNPJ, phonenumbers for phones) or the fallback for the
rare values the fast path does not cover (phonenumbers for international numbers).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import phonenumbers

CPF_W1 = np.arange(10, 1, -1)
CPF_W2 = np.arange(11, 1, -1)
CNPJ_W1 = np.array([5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2])
CNPJ_W2 = np.array([6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2])
# Area codes (DDD) in use in Brazil (Anatel).
DDD = {
    11,
    12,
    13,
    14,
    15,
    16,
    17,
    18,
    19,
    21,
    22,
    24,
    27,
    28,
    31,
    32,
    33,
    34,
    35,
    37,
    38,
    41,
    42,
    43,
    44,
    45,
    46,
    47,
    48,
    49,
    51,
    53,
    54,
    55,
    61,
    62,
    63,
    64,
    65,
    66,
    67,
    68,
    69,
    71,
    73,
    74,
    75,
    77,
    79,
    81,
    82,
    83,
    84,
    85,
    86,
    87,
    88,
    89,
    91,
    92,
    93,
    94,
    95,
    96,
    97,
    98,
    99,
}
EMAIL = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)
Normalizer = Callable[[pd.Series], pd.DataFrame]
COMPANY_SUFFIXES = re.compile(r"\b(ltda|me|epp|eireli|s ?a|s/a|cia|mei|limitada)\b")


def _text(values: pd.Series) -> pd.Series:
    """Strings, with None/NaN/non-strings turned into their text ('' for missing)."""
    objects = values.astype(object)
    return objects.where(objects.notna(), "").astype(str).astype(object)


def _per_unique(text: pd.Series, fn: Callable[[str], Any]) -> list[Any]:
    """`fn` applied once per distinct value (names and e-mails repeat across a big account).

    Distinct by Python's equality: pandas' factorize compares text up to its first NUL, so it
    took 'a\x00b' for 'a' and gave both one result."""
    values = text.tolist()
    results = {v: fn(v) for v in dict.fromkeys(values)}
    return [results[v] for v in values]


def _na(mask: pd.Series, values: pd.Series | str) -> pd.Series:
    out = (
        pd.Series(values, index=mask.index, dtype=object)
        if isinstance(values, str)
        else values.astype(object)
    )
    return out.where(mask, None)


# ---- CPF / CNPJ --------------------------------------------------------------------------------
def _check_digits(chars: np.ndarray, w1: np.ndarray, w2: np.ndarray, cpf: bool) -> np.ndarray:
    """Whether the last two positions of each row are the mod-11 check digits of the rest."""
    n = len(w1)
    s1 = (chars[:, :n] * w1).sum(axis=1)
    s2 = (chars[:, : n + 1] * w2).sum(axis=1)
    if cpf:
        d1, d2 = s1 * 10 % 11 % 10, s2 * 10 % 11 % 10
    else:
        r1, r2 = s1 % 11, s2 % 11
        d1, d2 = np.where(r1 < 2, 0, 11 - r1), np.where(r2 < 2, 0, 11 - r2)
    return (chars[:, n] == d1) & (chars[:, n + 1] == d2)


def normalize_documents(values: pd.Series) -> pd.DataFrame:
    """CPF/CNPJ -> `document` (bare, upper-case), `document_type` (cpf|cnpj), `document_reason`.

    Told apart by length (11 CPF, 14 CNPJ) and then validated by check digits. Alphanumeric CNPJs
    (issued from July 2026: letters in the first 12 positions) use the same rule with each
    character worth `ord(c) - 48`. A CPF of one repeated digit passes the arithmetic but is not
    issued, so it is refused too.
    """
    text = _text(values).str.strip()
    bare = text.str.replace(r"[.\-/\s]", "", regex=True).str.upper()
    present = bare != ""
    kind = pd.Series(None, index=values.index, dtype=object)
    reason = pd.Series(None, index=values.index, dtype=object)
    length = bare.str.len()
    is_cpf = present & (length == 11) & bare.str.fullmatch(r"[0-9]{11}")
    is_cnpj = present & (length == 14) & bare.str.fullmatch(r"[0-9A-Z]{12}[0-9]{2}")
    odd_chars = present & ~bare.str.fullmatch(r"[0-9A-Z]*")
    reason[odd_chars] = "document_characters"
    reason[present & ~odd_chars & ~is_cpf & ~is_cnpj] = "document_length"
    valid = pd.Series(False, index=values.index)
    for mask, w1, w2, size, name in (
        (is_cpf, CPF_W1, CPF_W2, 11, "cpf"),
        (is_cnpj, CNPJ_W1, CNPJ_W2, 14, "cnpj"),
    ):
        if not mask.any():
            continue
        chosen = bare[mask]
        chars = (
            np.frombuffer("".join(chosen).encode("ascii"), dtype=np.uint8).reshape(-1, size).astype(np.int64)
            - 48
        )
        ok = _check_digits(chars, w1, w2, cpf=name == "cpf")
        repeated = (chars == chars[:, :1]).all(axis=1)
        valid[mask] = ok & ~repeated
        kind[mask] = name
        reason[chosen.index[~ok]] = "document_check_digits"
        reason[chosen.index[ok & repeated]] = "document_repeated_digits"
    document = _na(valid, bare)
    return pd.DataFrame(
        {"document": document, "document_type": kind.where(valid, None), "document_reason": reason},
        index=values.index,
    )


# ---- e-mail ------------------------------------------------------------------------------------
def normalize_emails(values: pd.Series) -> pd.DataFrame:
    """Trimmed, lower-cased, syntax-checked e-mail -> `email`, `email_reason`."""
    text = _text(values).str.strip().str.lower()
    present = text != ""
    ok = present & pd.Series(
        _per_unique(text, lambda v: bool(EMAIL.match(v)) and len(v) <= 254), index=text.index
    )
    reason = pd.Series(None, index=values.index, dtype=object)
    several = present & ~ok & text.str.contains(r"[;,\s]") & text.str.count("@").gt(1)
    reason[present & ~ok] = "email_syntax"
    reason[several] = "email_several_addresses"
    return pd.DataFrame({"email": _na(ok, text), "email_reason": reason}, index=values.index)


# ---- phones ------------------------------------------------------------------------------------
def _br_fast_path(text: pd.Series) -> pd.Series:
    """E.164 for the common Brazilian shapes, vectorized; None where unsure (phonenumbers decides).

    Accepted: optional 55 country code or 0 trunk prefix, a DDD in use, then a mobile number
    (9 and eight digits) or a landline (2-5 and seven digits). The property tests check every
    number accepted here is valid for phonenumbers.
    """
    digits = text.str.replace(r"[^0-9]", "", regex=True)
    digits = digits.where(~(digits.str.startswith("55") & digits.str.len().isin([12, 13])), digits.str[2:])
    digits = digits.where(~(digits.str.startswith("0") & digits.str.len().isin([11, 12])), digits.str[1:])
    ddd = pd.to_numeric(digits.str[:2], errors="coerce")
    mobile = (digits.str.len() == 11) & (digits.str[2] == "9")
    landline = (digits.str.len() == 10) & digits.str[2].isin(list("2345"))
    ok = ddd.isin(list(DDD)) & (mobile | landline) & ~text.str.lstrip().str.startswith("+")
    return ("+55" + digits).where(ok, None)


def _phone(value: str) -> tuple[str | None, str | None]:
    text = value.strip()
    if not text:
        return None, None
    digits = re.sub(r"[^0-9]", "", text)
    if not digits:
        return None, "phone_no_digits"
    try:
        parsed = phonenumbers.parse(text, "BR")
    except phonenumbers.NumberParseException:
        return None, "phone_unparseable"
    if not phonenumbers.is_valid_number(parsed):
        return None, "phone_invalid"
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), None


def normalize_phones(values: pd.Series) -> pd.DataFrame:
    """Phone -> E.164 `phone` (+55 by default) and `phone_reason`."""
    text = _text(values)
    phone = _br_fast_path(text)
    reason = pd.Series(None, index=values.index, dtype=object)
    rest = phone.isna() & (text.str.strip() != "")
    if rest.any():
        pairs = _per_unique(text[rest], _phone)
        phone[rest] = [p[0] for p in pairs]
        reason[rest] = [p[1] for p in pairs]
    return pd.DataFrame({"phone": phone.astype(object), "phone_reason": reason}, index=values.index)


# ---- names and codes ---------------------------------------------------------------------------
def fold(text: str) -> str:
    """Accent-folded, lower-case, punctuation-free, single-spaced: the key names are matched on."""
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_only = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", ascii_only).split())


def normalize_names(values: pd.Series) -> pd.DataFrame:
    """`name` (trimmed, whitespace collapsed, accents kept), `name_key` (folded), `name_reason`."""
    collapsed = _per_unique(_text(values), lambda v: " ".join(unicodedata.normalize("NFC", v).split()))
    text = pd.Series(collapsed, index=values.index, dtype=object)
    key = pd.Series(_per_unique(text, fold), index=values.index, dtype=object)
    present = key != ""
    reason = pd.Series(None, index=values.index, dtype=object)
    reason[~present & (text != "")] = "name_no_letters"
    reason[text == ""] = "name_missing"
    return pd.DataFrame(
        {"name": _na(text != "", text), "name_key": _na(present, key), "name_reason": reason},
        index=values.index,
    )


def company_key(name_key: str) -> str:
    """Folded name without legal-form words (Ltda, S.A., ME...), for fuzzy company matching."""
    return " ".join(COMPANY_SUFFIXES.sub(" ", name_key).split())


def normalize_codes(values: pd.Series) -> pd.DataFrame:
    """External code: trimmed; empty is no code."""
    text = _text(values).str.strip()
    return pd.DataFrame({"external_code": _na(text != "", text)}, index=values.index)
