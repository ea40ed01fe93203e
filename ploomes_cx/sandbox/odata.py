"""The OData `$filter` subset the sandbox understands, evaluated as numpy masks.

Vectorised evaluation over the columnar index is what lets the sandbox page through a million
contacts at API speed. Supported: `eq ne gt ge lt le`, `in (...)` (OData 4.01), `and`, `or`, `not`, parentheses, navigation
paths (`Deal/Id` -> `DealId`), integer / decimal / string / boolean / null literals and ISO-8601
dates with an offset, `Z`, or none (account-local, ploomes-api.md §5). Anything else is a 400 with
a message, as a real OData server would answer a query it cannot run.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

TOKEN = re.compile(
    r"\s*(?:(?P<date>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)"
    r"|(?P<num>-?\d+(?:\.\d+)?)|(?P<str>'(?:[^']|'')*')|(?P<lp>\()|(?P<rp>\))|(?P<comma>,)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*))"
)
OPS: dict[str, Callable[[np.ndarray, Any], np.ndarray]] = {
    "eq": np.equal,
    "ne": np.not_equal,
    "gt": np.greater,
    "ge": np.greater_equal,
    "lt": np.less,
    "le": np.less_equal,
}


class ODataError(ValueError):
    """A query the sandbox refuses; the message goes back to the client in a 400 body."""


@dataclass
class _Tok:
    kind: str
    text: str


def _tokens(text: str) -> list[_Tok]:
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ODataError(f"syntax error in $filter near {text[pos : pos + 30]!r}")
        kind = m.lastgroup or ""
        out.append(_Tok(kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def parse_datetime_ms(text: str, naive_zone: ZoneInfo) -> int:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=naive_zone)
    return int(value.timestamp() * 1000)


class FilterEvaluator:
    """Parses one `$filter` and evaluates it against a table's columns."""

    def __init__(self, text: str, columns: dict[str, np.ndarray], date_columns: set[str], zone: ZoneInfo):
        self.toks = _tokens(text)
        self.i = 0
        self.columns = columns
        self.date_columns = date_columns
        self.zone = zone
        self.n = len(next(iter(columns.values())))

    def evaluate(self) -> np.ndarray:
        mask = self._or()
        if self.i != len(self.toks):
            raise ODataError(f"unexpected {self.toks[self.i].text!r} in $filter")
        return mask

    def _peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _take(self) -> _Tok:
        tok = self._peek()
        if tok is None:
            raise ODataError("$filter ends too early")
        self.i += 1
        return tok

    def _keyword(self, word: str) -> bool:
        tok = self._peek()
        if tok and tok.kind == "name" and tok.text == word:
            self.i += 1
            return True
        return False

    def _or(self) -> np.ndarray:
        mask = self._and()
        while self._keyword("or"):
            mask = mask | self._and()
        return mask

    def _and(self) -> np.ndarray:
        mask = self._not()
        while self._keyword("and"):
            mask = mask & self._not()
        return mask

    def _not(self) -> np.ndarray:
        if self._keyword("not"):
            return ~self._not()
        tok = self._peek()
        if tok and tok.kind == "lp":
            self.i += 1
            mask = self._or()
            if self._take().kind != "rp":
                raise ODataError("missing ) in $filter")
            return mask
        return self._comparison()

    def _comparison(self) -> np.ndarray:
        left = self._take()
        if left.kind != "name":
            raise ODataError(f"expected a property name in $filter, got {left.text!r}")
        nxt = self._peek()
        if nxt and nxt.kind == "lp":
            raise ODataError(f"the sandbox does not support the function {left.text}() in $filter")
        if self._keyword("in"):
            return np.isin(self._column(left.text), self._literal_list(left.text))
        op = self._take()
        if op.kind != "name" or op.text not in OPS:
            raise ODataError(f"expected one of {', '.join(OPS)} after {left.text}, got {op.text!r}")
        column = self._column(left.text)
        literal = self._literal(self._take(), left.text)
        return OPS[op.text](column, literal)

    def _literal_list(self, prop: str) -> list[Any]:
        """`(1,2,3)` after `in` (OData 4.01)."""
        if self._take().kind != "lp":
            raise ODataError(f"expected ( after {prop} in")
        values = [self._literal(self._take(), prop)]
        while (tok := self._take()).kind == "comma":
            values.append(self._literal(self._take(), prop))
        if tok.kind != "rp":
            raise ODataError(f"expected , or ) in the list after {prop} in, got {tok.text!r}")
        return values

    def _column(self, path: str) -> np.ndarray:
        name = path.replace("/Id", "Id").replace("/", "")
        if name not in self.columns:
            raise ODataError(
                f"the sandbox cannot filter on {path!r}; filterable here: {', '.join(sorted(self.columns))}"
            )
        return self.columns[name]

    def _literal(self, tok: _Tok, prop: str) -> Any:
        if tok.kind == "date":
            if prop.replace("/", "") not in self.date_columns:
                raise ODataError(f"{prop} is not a date")
            return parse_datetime_ms(tok.text, self.zone)
        if tok.kind == "num":
            if prop in self.date_columns:
                raise ODataError(f"{prop} must be compared with a date literal")
            return float(tok.text) if "." in tok.text else int(tok.text)
        if tok.kind == "name" and tok.text in ("true", "false"):
            return int(tok.text == "true")
        if tok.kind == "name" and tok.text == "null":
            return 0
        if tok.kind == "str":
            raise ODataError(f"the sandbox only filters numbers and dates, not strings ({prop})")
        raise ODataError(f"expected a value after the operator for {prop}, got {tok.text!r}")


def split_top_level(text: str) -> list[str]:
    """`a,b($expand=c,d),e` -> ['a', 'b($expand=c,d)', 'e']."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        current += ch
    if current.strip():
        parts.append(current.strip())
    return parts


def parse_orderby(text: str, columns: dict[str, np.ndarray]) -> list[tuple[str, bool]]:
    out = []
    for part in split_top_level(text):
        bits = part.split()
        name = bits[0]
        if name not in columns:
            raise ODataError(f"the sandbox cannot order by {name!r}")
        descending = len(bits) > 1 and bits[1].lower() == "desc"
        out.append((name, descending))
    return out
