"""The normalizers of `normalize.py` as DuckDB SQL, for the values where both agree exactly.

A million contacts cleaned value by value in pandas and Python took most of a staging run. The
same rules written as SQL run on every core inside the query that reads the payloads, and the raw
text of a clean value never reaches pandas. SQL covers plain text: ASCII, and for names also the
Latin-1 letters (U+00C0-U+00FF, the accented Portuguese alphabet), where DuckDB's string
functions and Python's give the same result character for character. A value outside that
domain, and a phone the Brazilian fast path does not take, is flagged (`<field>_py`) and cleaned
by the Python normalizer, so each value is cleaned by one rule whichever side runs it; the tests
compare both sides on dirty and random values.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ploomes_cx.ploomes.custom_fields import sql_literal
from ploomes_cx.staging.normalize import CNPJ_W1, CNPJ_W2, DDD, EMAIL

# What Python's str.strip()/split() treat as whitespace among ASCII characters; RE2's \s lacks
# \x0b and \x1c-\x1f, so the class is spelled out.
WS_CLASS = r"[\t\n\x0b\x0c\r\x1c-\x1f ]"
CONTROL_WS = r"[\t\n\x0b\x0c\r\x1c-\x1f]"  # the same without the space
WS_CHARS = "||".join(f"chr({c})" for c in (9, 10, 11, 12, 13, 28, 29, 30, 31, 32))
# Domains, as predicates on `{x}` (the raw value, '' for null): ASCII is a string whose bytes
# are its characters; names also take the Latin-1 letters. NUL is left to Python: some of DuckDB's
# string functions stop at it.
ASCII = "(strlen({x}) = length({x}) and not contains({x}, chr(0)))"
NAME_DOMAIN = r"regexp_full_match({x}, '[\x{{01}}-\x{{7f}}\x{{c0}}-\x{{ff}}]*')"


@dataclass(frozen=True)
class Field:
    """One field's SQL: `steps` define helper columns (each step may use the earlier ones), then
    `outputs` the field's columns. Rows outside `domain` get null outputs and `flag` true."""

    name: str
    raw: str
    domain: str
    steps: tuple[dict[str, str], ...]
    outputs: dict[str, str]
    flag: str = ""  # extra rows for Python, besides those outside the domain
    # outputs with a closed set of values, which a reader can fetch as one shared string per value
    closed: tuple[tuple[str, tuple[str, ...]], ...] = ()


def _strip(raw: str) -> str:
    """Python's `str.strip()`. DuckDB's trim with a character set costs a few tenths of a second
    per million values even when there is nothing to strip, so it only runs where an edge
    character is whitespace."""
    text = f"coalesce({raw}, '')"
    return f"case when regexp_matches({text}, '^{WS_CLASS}|{WS_CLASS}$') then trim({text}, {WS_CHARS}) else {text} end"


def _dropped(text: str, characters: str) -> str:
    """`text` without any of `characters`, one replace() each."""
    for c in characters:
        text = f"replace({text}, {sql_literal(c)}, '')"
    return text


def _weighted(digit: Callable[[int], str], weights: Iterable[int]) -> str:
    """Sum of (digit x weight) over the leading digits, one weight each; `digit(i)` is the SQL of
    the i-th. Written out term by term: a list per row would cost more than the arithmetic."""
    return "(" + " + ".join(f"{digit(i)} * {int(w)}" for i, w in enumerate(weights, start=1)) + ")"


def _decimal_digit(number: str, position: int) -> str:
    """The `position`th of an eleven-digit `number`'s decimal digits, from the left."""
    return f"({number} // {10 ** (11 - position)} % 10)"


def _cnpj_digit(total: str) -> str:
    return f"(case when {total} % 11 < 2 then 0 else 11 - {total} % 11 end)"


def _digit(bare: str, position: int) -> str:
    """The i-th character's value, `ord(c) - 48`, as in the alphanumeric CNPJ rule."""
    return f"(ascii(substr({bare}, {position}, 1)) - 48)"


def document_field(raw: str) -> Field:
    """`document`, `document_type`, `document_reason` (`normalize.normalize_documents`)."""
    # The separators and spaces are dropped by replace(), a fifth of translate()'s cost over a
    # million values; the rare value with other whitespace (a tab) is left to Python (the domain).
    text = f"coalesce({raw}, '')"
    bare = f"upper({_dropped(text, '.-/ ')})"
    b = "_doc_b"
    # a CPF is eleven digits: read as one integer, a digit is two integer operations, where
    # substr() and ascii() cost several times more (a CNPJ may hold letters: read by character)
    n = "_doc_n"
    cpf, cnpj = functools.partial(_decimal_digit, n), functools.partial(_digit, b)
    cpf_ok = (
        f"({cpf(10)} = {_weighted(cpf, range(10, 1, -1))} * 10 % 11 % 10 "
        f"and {cpf(11)} = {_weighted(cpf, range(11, 1, -1))} * 10 % 11 % 10)"
    )
    cnpj_ok = (
        f"({cnpj(13)} = {_cnpj_digit(_weighted(cnpj, CNPJ_W1))} "
        f"and {cnpj(14)} = {_cnpj_digit(_weighted(cnpj, CNPJ_W2))})"
    )
    kind = (
        f"case when length({b}) = 11 and regexp_full_match({b}, '[0-9]{{11}}') then 'cpf' "
        f"when length({b}) = 14 and regexp_full_match({b}, '[0-9A-Z]{{12}}[0-9]{{2}}') then 'cnpj' end"
    )
    reason = f"""case when {b} = '' then null
        when not regexp_full_match({b}, '[0-9A-Z]*') then 'document_characters'
        when _doc_k is null then 'document_length'
        when not (case when _doc_k = 'cpf' then {cpf_ok} else {cnpj_ok} end) then 'document_check_digits'
        when {b} = repeat(substr({b}, 1, 1), length({b})) then 'document_repeated_digits' end"""
    return Field(
        "document",
        raw,
        f"({ASCII} and not regexp_matches({{x}}, '{CONTROL_WS}'))",
        (
            {b: bare},
            {"_doc_k": kind},
            {n: f"case when _doc_k = 'cpf' then cast({b} as bigint) end"},
            {"_doc_r": reason},
        ),
        {
            "document": f"case when {b} <> '' and _doc_r is null then {b} end",
            "document_type": f"case when {b} <> '' and _doc_r is null then _doc_k end",
            "document_reason": "_doc_r",
        },
        closed=(("document_type", ("cpf", "cnpj")),),
    )


def email_field(raw: str) -> Field:
    """`email`, `email_reason` (`normalize.normalize_emails`)."""
    t = "_em_t"
    ok = f"({t} <> '' and length({t}) <= 254 and regexp_full_match({t}, {sql_literal(EMAIL.pattern)}))"
    several = f"(regexp_matches({t}, '[;,]|{WS_CLASS}') and length({t}) - length(replace({t}, '@', '')) > 1)"
    reason = (
        f"case when {t} = '' or _em_ok then null when {several} then 'email_several_addresses' "
        "else 'email_syntax' end"
    )
    return Field(
        "email",
        raw,
        ASCII,
        ({t: f"lower({_strip(raw)})"}, {"_em_ok": ok}),
        {"email": f"case when _em_ok then {t} end", "email_reason": reason},
    )


def phone_field(raw: str) -> Field:
    """`phone`, `phone_reason`: the Brazilian fast path of `normalize._br_fast_path`; a value it
    does not take and that is not blank goes to phonenumbers (flagged)."""
    # most phones are written with only ( ) - and spaces around the digits: replace() takes them
    # off at a third of regexp_replace()'s cost, which runs only where something else is left
    text = f"coalesce({raw}, '')"
    digits = (
        f"case when regexp_full_match(_ph_s, '[0-9]*') then _ph_s "
        f"else regexp_replace({text}, '[^0-9]', '', 'g') end"
    )
    d0, d1, d = "_ph_d0", "_ph_d1", "_ph_d"
    no_country = f"case when starts_with({d0}, '55') and length({d0}) in (12, 13) then {d0}[3:] else {d0} end"
    no_trunk = f"case when starts_with({d1}, '0') and length({d1}) in (11, 12) then {d1}[2:] else {d1} end"
    ok = f"""coalesce(try_cast({d}[1:2] as integer) in ({", ".join(map(str, sorted(DDD)))})
        and ((length({d}) = 11 and {d}[3] = '9') or (length({d}) = 10 and {d}[3] in ('2', '3', '4', '5')))
        and not regexp_matches({text}, '^{WS_CLASS}*[+]'), false)"""
    return Field(
        "phone",
        raw,
        ASCII,
        ({"_ph_s": _dropped(text, "()- ")}, {d0: digits}, {d1: no_country}, {d: no_trunk}, {"_ph_ok": ok}),
        {"phone": f"case when _ph_ok then '+55' || {d} end", "phone_reason": "null::varchar"},
        flag=f"not _ph_ok and {_strip(raw)} <> ''",
    )


def name_field(raw: str, keyed: bool = True) -> Field:
    """`name` (whitespace collapsed), `name_key` (folded), `name_reason` (`normalize_names`).

    Not `keyed`: `name_key` only says whether the name has one, '' standing for it (for records
    never matched by name). A name with an ASCII letter or digit has one; folding runs only for
    the others, so most names skip strip_accents, the field's costliest function."""
    c, f = "_nm_c", "_nm_f"
    # Most names need neither regexp_replace, and a search is cheaper than a replace: the
    # collapse runs where there is a run of whitespace, a control character or an edge space;
    # the key's where the folded name (already collapsed) has a character outside [a-z0-9 ].
    text = f"coalesce({raw}, '')"
    messy = f"regexp_matches({text}, '{WS_CLASS}{{2}}|{CONTROL_WS}|^ | $')"
    collapsed = (
        f"case when {messy} then trim(regexp_replace({text}, '{WS_CLASS}+', ' ', 'g'), ' ') else {text} end"
    )
    folded = f"case when strlen({c}) = length({c}) then lower({c}) else strip_accents(lower({c})) end"

    def key(folded_name: str) -> str:
        return (
            f"case when regexp_matches({folded_name}, '[^a-z0-9 ]') "
            f"then trim(regexp_replace({folded_name}, '[^a-z0-9]+', ' ', 'g'), ' ') else {folded_name} end"
        )

    reason = f"case when {c} = '' then 'name_missing' when _nm_k = '' then 'name_no_letters' end"
    if keyed:
        steps: tuple[dict[str, str], ...] = ({c: collapsed}, {f: folded}, {"_nm_k": key(f)})
        name_key = "nullif(_nm_k, '')"
    else:
        present = f"case when regexp_matches({c}, '[A-Za-z0-9]') then 'k' else {key(f'({folded})')} end"
        steps, name_key = ({c: collapsed}, {"_nm_k": present}), "case when _nm_k <> '' then '' end"
    return Field(
        "name",
        raw,
        NAME_DOMAIN,
        steps,
        {"name": f"nullif({c}, '')", "name_key": name_key, "name_reason": reason},
    )


def code_field(raw: str) -> Field:
    """`external_code` (`normalize.normalize_codes`)."""
    return Field("external_code", raw, ASCII, (), {"external_code": f"nullif({_strip(raw)}, '')"})


def normalized(source: str, fields: list[Field]) -> str:
    """SQL of `source` (a subquery) with each field's outputs and `<name>_py` flag added."""
    sql = source
    for f in fields:
        inside = f"_{f.name}_in"
        domain = f.domain.format(x=f"coalesce({f.raw}, '')")
        sql = f"(select *, {domain} as {inside} from {sql})"
        for step in f.steps:
            sql = f"(select *, {', '.join(f'{e} as {n}' for n, e in step.items())} from {sql})"
        columns = ", ".join(f"case when {inside} then {e} end as {n}" for n, e in f.outputs.items())
        flag = f"not {inside}" + (f" or coalesce({f.flag}, false)" if f.flag else "")
        sql = f"(select *, {columns}, {flag} as {f.name}_py from {sql})"
    return sql
