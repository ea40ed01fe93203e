"""`ploomes-cx init`: the choices of a mapping asked one by one, each checked as it is typed, and
the file they make, written with comments. Never a secret: the file names variables only."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ploomes_cx.connect.fields import FieldRow, attribute_name

Ask = Callable[[str], str]  # input()
Say = Callable[[str], None]  # print()

CHOICES = {
    "clients": ("organizations", "persons", "deals"),
    "contacts": ("organizations", "persons", "deals"),
    "contracts": ("won_deals", "deal_products", "none"),
    "identifiers": ("cnpj_cpf", "external_code", "email"),
    "timeline": ("notes", "activities", "attachments"),
    "cadence": ("daily", "hourly"),
}


@dataclass
class Answers:
    name: str
    clients: str = "organizations"
    contacts: str = "persons"
    contracts: str = "won_deals"
    identifiers: list[str] = field(default_factory=lambda: ["cnpj_cpf", "external_code", "email"])
    timeline: list[str] = field(default_factory=lambda: ["notes", "activities", "attachments"])
    cadence: str = "daily"
    start: str = ""
    timezone: str = "America/Sao_Paulo"
    custom_fields: dict[str, list[tuple[FieldRow, str]]] = field(
        default_factory=lambda: {"clients": [], "contacts": [], "contracts": []}
    )


class Prompter:
    """Asks until the answer is valid; Enter takes the default shown in brackets."""

    def __init__(self, ask: Ask, say: Say) -> None:
        self.ask, self.say = ask, say

    def value(self, question: str, default: str, check: Callable[[str], str | None]) -> str:
        while True:
            answer = self.ask(f"{question} [{default}]: ").strip() or default
            problem = check(answer)
            if problem is None:
                return answer
            self.say(f"  {problem}")

    def one_of(self, question: str, key: str, default: str) -> str:
        options = CHOICES[key]
        return self.value(
            f"{question} ({' / '.join(options)})",
            default,
            lambda a: None if a in options else f"answer one of: {', '.join(options)}",
        )

    def some_of(self, question: str, key: str, default: list[str], allow_none: bool) -> list[str]:
        options = CHOICES[key]

        def check(a: str) -> str | None:
            picked = _items(a)
            if a == "none" and allow_none:
                return None
            wrong = [p for p in picked if p not in options]
            if wrong or not picked or len(set(picked)) != len(picked):
                extra = " or none" if allow_none else ""
                return f"a comma-separated list of {', '.join(options)} without repeats{extra}"
            return None

        answer = self.value(f"{question} ({', '.join(options)})", ", ".join(default), check)
        return [] if answer == "none" else _items(answer)

    def numbers(self, question: str, count: int) -> list[int]:
        def check(a: str) -> str | None:
            if a == "none":
                return None
            ok = all(p.isdigit() and 1 <= int(p) <= count for p in _items(a))
            return None if ok and _items(a) else f"numbers from 1 to {count}, comma-separated, or none"

        answer = self.value(question, "none", check)
        return [] if answer == "none" else sorted({int(p) for p in _items(answer)})


def _items(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _date(text: str) -> str | None:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return "a date written YYYY-MM-DD"
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return "not a real date"
    return None


def _zone(text: str) -> str | None:
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        return "an IANA time zone such as America/Sao_Paulo"
    return None


def interview(a: Answers, p: Prompter, fields: list[FieldRow] | None) -> Answers:
    """Section 1's choices in the order the README explains them; `fields` None when no account."""
    a.clients = p.one_of("Clients come from", "clients", a.clients)
    a.contacts = p.one_of("Contacts come from", "contacts", a.contacts)
    a.contracts = p.one_of("Contracts come from", "contracts", a.contracts)
    a.identifiers = p.some_of("Match records by, in this order", "identifiers", a.identifiers, False)
    a.timeline = p.some_of("Timeline brings", "timeline", a.timeline, True)
    a.cadence = p.one_of("Sync windows are", "cadence", a.cadence)
    a.start = p.value("First window (YYYY-MM-DD)", a.start or dt.date.today().isoformat(), _date)
    a.timezone = p.value("Time zone of the windows", a.timezone, _zone)
    if fields is None:
        p.say("No Ploomes account to read custom fields from (set PLOOMES_BASE_URL and PLOOMES_USER_KEY);")
        p.say(f"none are mapped now: `ploomes-cx fields {a.name}` prints a block to paste later.")
        return a
    _pick_fields(a, p, fields)
    return a


def _pick_fields(a: Answers, p: Prompter, fields: list[FieldRow]) -> None:
    sections = {"clients": ["contacts"], "contacts": ["contacts"], "contracts": ["deals"]}
    if a.contracts == "deal_products":
        sections["contracts"].append("orders")
    if a.contracts == "none":
        del sections["contracts"]
    for section, entities in sections.items():
        offered = [f for f in fields if f.entity in entities]
        if not offered:
            continue
        p.say(f"\nCustom fields of the account that can travel to {section}:")
        for n, f in enumerate(offered, 1):
            fill = "" if f.filled is None else f", filled in {f.filled} of {f.sampled}"
            p.say(f"  {n:>2}. {f.name} ({f.type}{fill})")
        for n in p.numbers(f"Bring which to {section}? numbers, e.g. 1,3", len(offered)):
            chosen = offered[n - 1]
            taken = {name for _, name in a.custom_fields[section]}
            name = p.value(
                f"  CustomerX name for {chosen.name!r}", attribute_name(chosen.name), _new_name(taken)
            )
            a.custom_fields[section].append((chosen, name))


def _new_name(taken: set[str]) -> Callable[[str], str | None]:
    """A CustomerX attribute name: plain text, and not one this section already maps (the mapping
    refuses an attribute fed by two fields)."""

    def check(text: str) -> str | None:
        if not text or ":" in text or "#" in text:
            return "a name without ':' or '#'"
        return f"{text!r} is already mapped in this section; pick another name" if text in taken else None

    return check


def render(a: Answers) -> str:
    """The mapping file, commented, in the README's order; it names variables, never their values."""
    quoted: Callable[[Any], str] = lambda items: "[" + ", ".join(items) + "]"  # noqa: E731
    lines = [
        f"# Mapping {a.name}, written by `ploomes-cx init {a.name}` on {dt.date.today().isoformat()}.",
        '# Every key is explained in ploomes-cx docs/mapping.md ("Keys"); check it with',
        f"#   ploomes-cx check {a.name}",
        f"name: {a.name}",
        "",
        "ploomes:",
        "  base_url_env: PLOOMES_BASE_URL      # the variable holding the API URL, e.g. https://api2.ploomes.com",
        "  user_key_env: PLOOMES_USER_KEY      # the variable holding the integration user's User-Key",
        "",
        "customerx:",
        "  base_url_env: CUSTOMERX_BASE_URL    # the variable holding https://api.customerx.com.br/api/v1",
        "  token_env: CUSTOMERX_TOKEN          # the variable holding the account's API token",
        "",
        "sync:",
        f"  cadence: {a.cadence}",
        f'  start: "{a.start}"           # the first window; with history: true it brings the whole account',
        f"  timezone: {a.timezone}",
        "",
        "clients:",
        f"  source: {a.clients}",
        "contacts:",
        f"  source: {a.contacts}",
        "contracts:",
        f"  source: {a.contracts}",
        f"timeline: {quoted(a.timeline)}",
        "",
        f"identifiers: {quoted(a.identifiers)}   # the first both records have decides whether they are one",
        "",
        "custom_fields:",
    ]
    for section, picked in a.custom_fields.items():
        if not picked:
            lines.append(f"  {section}: []")
            continue
        lines.append(f"  {section}:")
        for f, name in picked:
            lines.append(f"    - ploomes: {f.key}   # {f.name} ({f.type})")
            lines.append(f"      customerx: {name}")
    return "\n".join(lines) + "\n"
