"""Reading a webhook body without letting a caller who lacks the key make us work (issue 28).

Ploomes may echo the validation key in the body (`ValidationKey`, `webhooks.key_echo` any or
body, I: unconfirmed) and a full JSON parse of a 2 MiB body costs hundreds of milliseconds, so
`key_in_body` looks for the key with a byte scan first: it finds each `"ValidationKey": "..."`
member wherever it is and compares its value with the key in constant time. A body without the
key is refused unparsed. A match is only a sign the sender holds the key; the receiver parses
the body and then requires the key at the top level, where Ploomes puts it.

`decode` then parses what passed, with limits, so that anything that cannot be a callback is a
`BadEvent` (a 400 with one log line), never an exception deeper down: integers beyond 64 bits
(SQLite cannot store them), NaN and infinities, nesting deeper than `MAX_DEPTH` (a callback is a
few levels deep; deep nesting exhausts the recursion limit), invalid UTF-8.
"""

from __future__ import annotations

import hmac
import json
import math
import re
from typing import Any

from ploomes_cx.live.events import INT64, BadEvent

MAX_DEPTH = 32  # a callback: body -> New -> OtherProperties -> item -> a value object
KEY_MEMBER = b'"ValidationKey"'
_KEY_START = re.compile(rb'"ValidationKey"\s*+:\s*+"')  # a member, up to its value's opening quote
_REST_OF_STRING = re.compile(rb'(?:[^"\\]++|\\.)*+"', re.DOTALL)  # possessive: never backtracks
MAX_KEY = 1024  # bytes of a value worth decoding (a key is ~64)
KEY_CANDIDATES = 16  # members looked at: Ploomes sends one; a body full of decoys costs no more


def key_in_body(raw: bytes, key: str) -> bool:
    """Whether some `ValidationKey` member of the raw body carries `key`, without parsing it: one
    scan for the member's name, then at most `KEY_CANDIDATES` values of up to `MAX_KEY` bytes."""
    if KEY_MEMBER not in raw:
        return False
    expected = key.encode()
    for n, member in enumerate(_KEY_START.finditer(raw)):
        if n >= KEY_CANDIDATES:
            return False
        value = _REST_OF_STRING.match(raw, member.end(), member.end() + MAX_KEY + 1)
        if value is None:  # longer than any key, or never closed
            continue
        try:  # the value as JSON has it: an escaped `\/` or `\u00e9` is the same key
            sent = json.loads(b'"' + value.group(0))
        except ValueError:
            continue
        if isinstance(sent, str) and hmac.compare_digest(sent.encode("utf-8", "surrogatepass"), expected):
            return True
    return False


def _int(text: str) -> int:
    if len(text.lstrip("-")) > 19:  # refused before int() converts a 4000-digit number
        raise BadEvent("an integer beyond 64 bits")
    value = int(text)
    if not -INT64 <= value < INT64:
        raise BadEvent("an integer beyond 64 bits")
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadEvent("a number beyond the range of a float")
    return value


def _constant(text: str) -> Any:
    raise BadEvent(f"{text} is not JSON")


def _too_deep(value: Any, limit: int) -> bool:
    """Whether containers nest more than `limit` levels (iterative: no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def decode(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or BadEvent saying in one line why it cannot be a callback."""
    try:
        body = json.loads(raw, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except BadEvent:
        raise
    except RecursionError:
        raise BadEvent(f"the JSON nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise BadEvent(f"the body is not JSON ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(body, dict):
        raise BadEvent("the body is not a JSON object")
    if _too_deep(body, MAX_DEPTH):
        raise BadEvent(f"the JSON nests deeper than {MAX_DEPTH} levels")
    return body
