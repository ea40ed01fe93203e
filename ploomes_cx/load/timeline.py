"""Timeline entries are posted once, ever, though CustomerX gives them no id of ours.

`POST /timelines` has no external id and no idempotency (customerx-api.md §8.4), so an entry
whose POST may have landed (a killed run left it `pending`, or the answer was lost) is looked for
before it is posted again. The only way to look is `GET /timelines`, which the spec knows from one
weak source: neither its filters nor its shape are documented. So the lookup holds under every
reading:

- the client is matched by either id: its external id at the top level or nested in `client{}`,
  or CustomerX's numeric id (`client_id`, `client.id`), which the crosswalk knows;
- title and body are compared as sent (CustomerX keeps free text as given); `created_at` as an
  instant, since responses may carry it reformatted in UTC (§3) and cut to the second;
- an entry one of our records already holds (crosswalk, or created or adopted in this load) is
  never a match, so two notes with the same text and time never share one entry; an entry with
  no date cannot be told apart and counts as "cannot tell";
- after a POST whose answer was lost, what was read of the listing is read again;
- a filter the server ignores shows as entries of other clients: the whole listing is then read
  once per load and used for every later entry, not once per entry;
- when the listing cannot answer (refused, or entries that name no client), the entry is posted
  and the ledger says it may be a duplicate: a rare duplicate someone can find beats a lost note.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ploomes_cx.customerx.client import CustomerXInDoubt, CustomerXRejected
from ploomes_cx.load import ledger

if TYPE_CHECKING:
    from ploomes_cx.load.loop import EntityLoad, Planned

# the tries of one entry whose answers keep getting lost, each after a look that found nothing
MAX_POSTS = 3
MAYBE_TWICE = (
    "posted after a lost answer, but GET /timelines could not tell whether the first POST landed "
    "({why}): check this client's timeline for a duplicate"
)


class CannotTell(Exception):
    """The listing cannot say whether an entry is there."""


def _parsed(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(value)) if value is not None else None
    except ValueError:
        return None


def _same_time(sent: Any, held: Any, tz: ZoneInfo) -> bool:
    """Whether two timestamps can be the same instant. CustomerX may give one back in UTC (§3) and
    cut or rounded to the second, so under a second apart is the same. Two offset-less values are
    compared as written; one offset-less value against one with an offset is read in either the
    account's zone or UTC (what CustomerX did with it is not documented)."""
    a, b = _parsed(sent), _parsed(held)
    if a is None or b is None:
        return False
    if (a.tzinfo is None) == (b.tzinfo is None):
        return abs((a - b).total_seconds()) < 1
    naive, aware = (a, b) if a.tzinfo is None else (b, a)
    readings = (naive.replace(tzinfo=tz), naive.replace(tzinfo=dt.UTC))
    return any(abs((r - aware).total_seconds()) < 1 for r in readings)


def _client_ids(entry: dict[str, Any]) -> tuple[set[str], set[str]]:
    """The external ids and numeric ids by which an entry names its client."""
    nested = entry.get("client") if isinstance(entry.get("client"), dict) else {}
    exts = {str(v) for v in (entry.get("external_id_client"), nested.get("external_id_client")) if v}
    ids = {str(v) for v in (entry.get("client_id"), nested.get("id")) if v is not None}
    return exts, ids


@dataclass
class TimelineLookup:
    """The entries CustomerX holds, read as cheaply as its listing allows."""

    load: EntityLoad
    _clients: dict[str, str] | None = None  # our client external id -> CustomerX id
    _by_client: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _everything: list[dict[str, Any]] | None = None
    _taken: set[str] | None = None  # CustomerX entries one of our records holds: never a match

    def taken(self) -> set[str]:
        if self._taken is None:
            self.load.crosswalk.flush()  # rows of this load still waiting to be written count too
            owners = ledger.owners(self.load.con, self.load.schema, "timeline")
            self._taken = {str(i) for i in owners}
        return self._taken

    def hold(self, cx_id: Any) -> None:
        """An entry one of our records now holds (created or adopted in this load)."""
        if cx_id is not None:
            self.taken().add(str(cx_id))

    def forget(self, ext: str) -> None:
        """After a POST in doubt: what was read of the listing is older than that POST."""
        self._by_client.pop(ext, None)
        self._everything = None

    def client_id(self, ext: str) -> str | None:
        if self._clients is None:
            owners = ledger.owners(self.load.con, self.load.schema, "clients")
            self._clients = {e: str(i) for i, e in owners.items()}
        return self._clients.get(ext)

    def _entries(self, ext: str, cx_id: str | None) -> list[dict[str, Any]]:
        if self._everything is not None:
            return self._everything
        if ext not in self._by_client:
            assert self.load.api is not None
            try:
                rows = list(
                    self.load.api.list_all(
                        "list_timelines", params={"external_id_client": ext}, stats=self.load.report.stats
                    )
                )
            except CustomerXRejected as exc:
                raise CannotTell(f"GET /timelines answered HTTP {exc.status}") from None
            named = [_client_ids(r) for r in rows]
            if any(not exts and not ids for exts, ids in named):
                raise CannotTell("its entries do not name their client")
            if any(ext not in exts and (cx_id is None or cx_id not in ids) for exts, ids in named):
                self._everything = rows  # the filter was ignored: this is every entry there is
                return rows
            self._by_client[ext] = rows
        return self._by_client[ext]

    def find(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """The entry CustomerX holds for `body`, or None; `CannotTell` when the listing cannot say."""
        if _parsed(body.get("created_at")) is None:
            raise CannotTell("the entry has no date to tell it from another with the same text")
        ext = str(body["external_id_client"])
        cx_id = self.client_id(ext)
        tz = ZoneInfo(self.load.m.sync.timezone)
        taken = self.taken()
        for entry in self._entries(ext, cx_id):
            exts, ids = _client_ids(entry)
            if str(entry.get("id")) in taken or (ext not in exts and (cx_id is None or cx_id not in ids)):
                continue
            same_text = (entry.get("title"), entry.get("body") or "") == (
                body.get("title"),
                body.get("body") or "",
            )
            if same_text and _same_time(body.get("created_at"), entry.get("created_at"), tz):
                return entry
        return None


def post_once(load: EntityLoad, item: Planned, mine: ledger.Known | None) -> tuple[str, str | None]:
    """Post one entry unless CustomerX holds it already; (outcome, ledger detail)."""
    lookup = load.timeline_lookup()
    doubt = mine is not None and mine.state == "pending"
    why: str | None = None
    for _ in range(MAX_POSTS):
        if doubt:
            try:
                found = lookup.find(item.body)
            except CannotTell as exc:
                found, why = None, str(exc)
            if found is not None:
                lookup.hold(found.get("id"))
                load.remember(item.ext, found.get("id"), item.digest, item.body, "sent")
                return "adopted", None
        load.remember(item.ext, None, None, None, "pending")
        try:
            result, _ = load.call("create_timeline", body=item.body, resend=False)
        except CustomerXInDoubt:
            doubt = True
            lookup.forget(str(item.body["external_id_client"]))
            continue
        lookup.hold((result or {}).get("id"))
        load.remember(item.ext, (result or {}).get("id"), item.digest, item.body, "sent")
        return "created", MAYBE_TWICE.format(why=why) if why else None
    raise CustomerXInDoubt(f"timeline entry {item.ext}: CustomerX lost the answer to {MAX_POSTS} posts")
