"""The text of an alert, built from an incident; no I/O, so every wording is testable on its own.

An incident is one thing a person has to look at: a run that failed or was cancelled, a blocking
check that failed, or a run whose records CustomerX refused above the mapping's share. Each
message names the mapping, the window, what went wrong and the run's page in the UI. Every line
goes through `redact` with the values of the mapping's secret variables, so a secret an error
message happened to echo never reaches Slack or a mailbox.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
# the runner's and the live worker's tags (runner.WINDOWS_TAG, live.assets.EVENTS_TAG), named
# here rather than imported: the runner imports the factory, which imports the alert sensors
WINDOWS_TAG = "ploomes_cx/windows"
EVENTS_TAG = "ploomes_cx/live_events"
MAX_LINE = 300
TOP_REASONS = 3


@dataclass(frozen=True)
class Incident:
    mapping: str
    run_id: str
    cause: str  # with run_id, the incident's identity: failed | canceled | check:<asset>:<check> | refusals
    headline: str
    window: str
    details: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StepError:
    step: str
    error: str  # the error's text; only its first line is shown


def window_of(tags: Mapping[str, str], kind: str) -> str:
    """The run's window as the person started it: a partition key, a range, or what else it covers."""
    if tags.get(RANGE_START_TAG) and tags.get(RANGE_END_TAG):
        return f"{tags[RANGE_START_TAG]}..{tags[RANGE_END_TAG]}"
    if tags.get(PARTITION_TAG):
        return tags[PARTITION_TAG]
    if tags.get(WINDOWS_TAG):
        return tags[WINDOWS_TAG]
    if tags.get(EVENTS_TAG):
        return f"live events {tags[EVENTS_TAG]}"
    if kind == "reconcile":
        return "the whole account (reconcile)"
    return "none (an unpartitioned run)"


def first_line(text: str) -> str:
    """The first non-empty line, cut to MAX_LINE characters: enough to recognise the error."""
    line = next((s.strip() for s in text.splitlines() if s.strip()), "")
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"


def failed_run(
    mapping: str, run_id: str, kind: str, tags: Mapping[str, str], steps: list[StepError]
) -> Incident:
    details = [f"step {s.step} failed: {first_line(s.error)}" for s in steps] or [
        "the run failed before or between its steps (see the run's logs)"
    ]
    return Incident(mapping, run_id, "failed", f"{kind} run failed", window_of(tags, kind), details)


def canceled_run(
    mapping: str, run_id: str, kind: str, tags: Mapping[str, str], unfinished: list[str]
) -> Incident:
    details = ["the run was cancelled before it finished"]
    if unfinished:
        details.append(f"steps left unfinished: {', '.join(unfinished)}")
    return Incident(mapping, run_id, "canceled", f"{kind} run cancelled", window_of(tags, kind), details)


def failed_check(
    mapping: str,
    run_id: str,
    kind: str,
    tags: Mapping[str, str],
    check: tuple[str, str, str],
    numbers: Mapping[str, float | int],
) -> Incident:
    """`check` is (asset key as the UI writes it, check name, the check's description)."""
    asset, name, description = check
    counts = ", ".join(f"{k}: {v}" for k, v in numbers.items())
    details = [
        f"blocking check {name} on {asset} failed: {first_line(description) or 'no description'}"
        + (f" ({counts})" if counts else ""),
        "the assets after it were not materialized in this run",
    ]
    return Incident(
        mapping, run_id, f"check:{asset}:{name}", "blocking check failed", window_of(tags, kind), details
    )


def refused(
    mapping: str,
    run_id: str,
    kind: str,
    tags: Mapping[str, str],
    counts: tuple[int, int, float],
    reasons: list[str],
) -> Incident:
    """`counts` is (refused, records of the run, the mapping's max share); `reasons` as `top_reasons` says."""
    n, total, share = counts
    details = [f"CustomerX refused {n} of {total} records ({n / total:.1%}; alerts above {share:.1%})"]
    details += [f"  {r}" for r in reasons]
    headline = f"{kind} run: {n} of {total} records refused"
    return Incident(mapping, run_id, "refusals", headline, window_of(tags, kind), details)


_EMAIL = re.compile(r"[^@\s\"'<>(),;:]+@[^@\s\"'<>(),;:]+")
_NUMBER = re.compile(r"\d+")


def reason_of(entity: str, status: int | None, detail: str | None) -> str:
    """One refusal's reason with its own values taken out (e-mails, ids, numbers), so that the
    refusals of many records for the same cause count as one reason, and no personal data travels."""
    text = _NUMBER.sub("N", _EMAIL.sub("<e-mail>", detail or "no detail"))
    code = f"HTTP {status}" if status else "no call"
    return f"{entity}, {code}: {first_line(text)[:160]}"


def top_reasons(rows: Iterable[tuple[str, int | None, str | None]], limit: int = TOP_REASONS) -> list[str]:
    """`rows` are (entity, http_status, detail) of the refused ledger rows: the most frequent reasons."""
    counted = Counter(reason_of(*row) for row in rows)
    return [f"{n} x {reason}" for reason, n in counted.most_common(limit)]


def secret_parts(value: str) -> list[str]:
    """The pieces of a secret an error may quote instead of the whole value: the value without its
    surrounding whitespace and, for a URL, its path, its query, path and query together, and host
    and path without the scheme. An `InvalidURL` quotes only the path (a Slack URL's secret part),
    urllib's "unknown url type" a URL without a scheme."""
    stripped = value.strip()
    parts = [value, stripped]
    if "/" not in stripped:  # a key or a token, not a URL: `a:b` must not lose `b` everywhere
        return parts
    try:
        url = urlsplit(stripped)
    except ValueError:  # e.g. an unbalanced `[` in the host: the whole value is all we can hide
        return parts
    with_query = f"{url.path}?{url.query}" if url.query else url.path
    return [*parts, url.path, url.query, with_query, url.netloc + with_query, url.netloc + url.path]


def redact(text: str, secrets: Iterable[str] | Mapping[str, str]) -> str:
    """`text` without any of `secrets`, nor any of their parts an error may quote (`secret_parts`);
    a mapping gives each value its stand-in (the variable's `$NAME`, which tells the reader where
    to look without saying what it holds), a list `[redacted]`. Pieces under 4 characters stay."""
    given = dict(secrets) if isinstance(secrets, Mapping) else dict.fromkeys(secrets, "[redacted]")
    stand_in: dict[str, str] = {}
    for value, name in given.items():
        for part in secret_parts(value) if value else []:
            stand_in.setdefault(part, name)
    for secret in sorted((s for s in stand_in if len(s) >= 4 and s.strip()), key=len, reverse=True):
        text = text.replace(secret, stand_in[secret])
    return text


def render(incident: Incident, run_url: str, secrets: Mapping[str, str]) -> tuple[str, str]:
    """(subject, text): the subject is the e-mail's, the text both the webhook's and the e-mail's body.
    The run's link is added after redaction: it is the UI's address, never a secret."""
    subject = f"[ploomes-cx] {incident.mapping}: {incident.headline} (window {incident.window})"
    lines = [subject, f"mapping: {incident.mapping}", f"window: {incident.window}", *incident.details]
    return redact(subject, secrets), redact("\n".join(lines), secrets) + f"\nrun: {run_url}"
