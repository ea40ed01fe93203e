"""The sandbox Ploomes API's webhooks (ploomes-api.md §10): the `/Webhooks` registry, the action
and entity catalogues, and the callbacks a change made through `/_sandbox/touch` or
`/_sandbox/delete` sends to every webhook registered for it.

What is confirmed is served as confirmed: `POST /Webhooks {EntityId, ActionId, CallbackUrl,
ValidationKey}`, `GET`, `PATCH /Webhooks(id)`, `DELETE /Webhooks(id)`, `GET /Webhooks@Actions`, and
the callback body `{AccountId, Action, ActionUserId, Entity, New, Old, WebhookId,
WebhookCreatorId}` with offset-less dates and custom fields as a `{FieldKey: value}` map. What is
inferred is a knob, so tests can run every variant: the action and entity numbers (never the
obvious ones by default, so a client that hard-codes them fails), and how the ValidationKey comes
back (`key_echo`: header `X-Ploomes-Validation-Key`, body `ValidationKey`, or both).
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from ploomes_cx.sandbox.ploomes_data import PloomesDataset

# (I) the numbers are not confirmed anywhere: clients must read `/Webhooks@Actions`
DEFAULT_ACTIONS = {"Create": 1, "Update": 2, "Delete": 3, "Win": 7, "Lose": 8, "Reopen": 9}
# `/Fields@Entities`: 1, 2, 4 and 12 are confirmed (§6 Fields); Quote and InteractionRecord are not
DEFAULT_ENTITIES = {"Contact": 1, "Deal": 2, "Order": 4, "Quote": 5, "InteractionRecord": 9, "Task": 12}
# dataset table -> (entity set named in a callback's `Entity`, catalogue name)
TABLES = {
    "contacts": ("Contacts", "Contact"),
    "deals": ("Deals", "Deal"),
    "orders": ("Orders", "Order"),
    "quotes": ("Quotes", "Quote"),
    "notes": ("InteractionRecords", "InteractionRecord"),
    "tasks": ("Tasks", "Task"),
}
KEY_HEADER = "X-Ploomes-Validation-Key"
KEY_ECHOES = ("header", "body", "both")
WON, LOST, OPEN = 2, 3, 1
ACCOUNT_ID, ACTION_USER_ID = 1, 40001


class WebhookError(ValueError):
    """A registration the API refuses (answered 400 with this message)."""


@dataclass
class Delivery:
    """One callback as the sandbox sent it, kept for tests (`/_sandbox/webhooks/deliveries`)."""

    webhook_id: int
    url: str
    action: str
    entity: str
    record_id: int
    status: int | None = None  # the receiver's answer to the last attempt; None if it never answered
    attempts: int = 0
    dropped: bool = False  # a `drop` switch swallowed it: the receiver never saw it
    queued_at: float = 0.0  # time.time() when the change was made
    answered_in: float | None = None  # seconds the receiver took to answer the last attempt


@dataclass
class WebhookRegistry:
    """Registered webhooks and the thread that calls them, one callback at a time, in order."""

    dataset: PloomesDataset
    actions: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_ACTIONS))
    entities: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_ENTITIES))
    key_echo: str = "header"
    retries: int = 3  # (I) Ploomes' retry policy is unknown; a few attempts with backoff
    backoff: float = 0.5
    hooks: dict[int, dict[str, Any]] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(500001))
    _queue: queue.Queue = field(default_factory=queue.Queue)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _switches: list[str] = field(default_factory=list)  # `drop` / `duplicate`, one per next callback
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        if self.key_echo not in KEY_ECHOES:
            raise ValueError(f"key_echo must be one of {KEY_ECHOES}, not {self.key_echo!r}")

    # ---- the API -----------------------------------------------------------------------------
    def catalogue(self, which: str) -> list[dict[str, Any]]:
        names = self.actions if which == "actions" else self.entities
        return [{"Id": i, "Name": n} for n, i in sorted(names.items(), key=lambda kv: kv[1])]

    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        hook = self._checked(body, partial=False)
        with self._lock:
            hook["Id"] = next(self._ids)
            hook["CreatorId"] = ACTION_USER_ID
            self.hooks[hook["Id"]] = hook
        return self.public(hook)

    def update(self, hook_id: int, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if hook_id not in self.hooks:
                raise KeyError(hook_id)
            self.hooks[hook_id].update(self._checked(body, partial=True))
            return self.public(self.hooks[hook_id])

    def remove(self, hook_id: int) -> None:
        with self._lock:
            del self.hooks[hook_id]  # KeyError -> 404

    def listed(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self.public(h) for h in self.hooks.values()]

    @staticmethod
    def public(hook: dict[str, Any]) -> dict[str, Any]:
        """(I) Whether a listing shows the ValidationKey is unknown; the sandbox keeps it secret."""
        return {k: v for k, v in hook.items() if k != "ValidationKey"}

    def _checked(self, body: dict[str, Any], partial: bool) -> dict[str, Any]:
        fields = ("EntityId", "ActionId", "CallbackUrl", "ValidationKey")
        unknown = set(body) - set(fields)
        if unknown:
            raise WebhookError(f"unknown properties: {', '.join(sorted(unknown))}")
        if not partial:
            missing = [f for f in fields[:3] if body.get(f) in (None, "")]
            if missing:
                raise WebhookError(f"{', '.join(missing)} required")
        if "EntityId" in body and body["EntityId"] not in self.entities.values():
            raise WebhookError(f"EntityId {body['EntityId']!r} is not an entity (see /Fields@Entities)")
        if "ActionId" in body and body["ActionId"] not in self.actions.values():
            raise WebhookError(f"ActionId {body['ActionId']!r} is not an action (see /Webhooks@Actions)")
        url = body.get("CallbackUrl")
        if url is not None and (
            urlsplit(str(url)).scheme not in ("http", "https") or not urlsplit(str(url)).netloc
        ):
            raise WebhookError(f"CallbackUrl {url!r} is not an absolute http(s) URL")
        return {k: body[k] for k in fields if k in body}

    # ---- test switches ------------------------------------------------------------------------
    def switch(self, kind: str, times: int = 1) -> None:
        """The next `times` callbacks are dropped (never sent) or sent twice (`duplicate`)."""
        if kind not in ("drop", "duplicate"):
            raise ValueError(f"unknown webhook switch {kind!r}; known: drop, duplicate")
        with self._lock:
            self._switches.extend([kind] * times)

    # ---- callbacks -----------------------------------------------------------------------------
    def changed(
        self, table: str, record_id: int, old: dict[str, Any] | None, new: dict[str, Any] | None
    ) -> None:
        """A record changed (touch) or vanished (delete, `new` None): queue its callbacks."""
        if table not in TABLES:
            return
        entity_set, name = TABLES[table]
        action = _action(table, old, new)
        with self._lock:
            targets = [
                h
                for h in self.hooks.values()
                if h["EntityId"] == self.entities.get(name) and h["ActionId"] == self.actions.get(action)
            ]
            for hook in targets:
                switch = self._switches.pop(0) if self._switches else ""
                body = {
                    "AccountId": ACCOUNT_ID,
                    "Action": action,
                    "ActionUserId": ACTION_USER_ID,
                    "Entity": entity_set,
                    "New": _as_sent(new),
                    "Old": _as_sent(old),
                    "WebhookId": hook["Id"],
                    "WebhookCreatorId": hook["CreatorId"],
                }
                delivery = Delivery(
                    hook["Id"], hook["CallbackUrl"], action, entity_set, record_id, queued_at=time.time()
                )
                self.deliveries.append(delivery)
                if switch == "drop":
                    delivery.dropped = True
                    continue
                for _ in range(2 if switch == "duplicate" else 1):
                    self._queue.put((delivery, hook, body))
            self._ensure_thread()

    def idle(self, timeout: float = 10.0) -> bool:
        """Whether every queued callback has been attempted (tests wait on it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.02)
        return False

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._send_forever, name="ploomes-webhooks", daemon=True)
            self._thread.start()

    def _send_forever(self) -> None:
        with httpx.Client(timeout=10.0) as http:
            while True:
                delivery, hook, body = self._queue.get()
                try:
                    self._send(http, delivery, hook, body)
                finally:
                    self._queue.task_done()

    def _send(
        self, http: httpx.Client, delivery: Delivery, hook: dict[str, Any], body: dict[str, Any]
    ) -> None:
        key = hook.get("ValidationKey")
        headers = {KEY_HEADER: key} if key and self.key_echo in ("header", "both") else {}
        payload = {**body, "ValidationKey": key} if key and self.key_echo in ("body", "both") else body
        for attempt in range(self.retries + 1):
            delivery.attempts += 1
            started = time.monotonic()
            try:
                delivery.status = http.post(hook["CallbackUrl"], json=payload, headers=headers).status_code
            except httpx.HTTPError:
                delivery.status = None
            delivery.answered_in = time.monotonic() - started
            if delivery.status is not None and delivery.status < 500:
                return  # answered: a 4xx is the receiver's final word, as a 2xx is
            time.sleep(self.backoff * 2**attempt)


def _action(table: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> str:
    if new is None:
        return "Delete"
    if old is None:
        return "Create"
    if table == "deals" and old.get("StatusId") != new.get("StatusId"):
        return {WON: "Win", LOST: "Lose"}.get(new.get("StatusId"), "Reopen")
    return "Update"


def _as_sent(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """A record as a callback carries it (C [S12]): custom fields as a `{FieldKey: value}` map."""
    if record is None:
        return None
    out = dict(record)
    if isinstance(out.get("OtherProperties"), list):
        out["OtherProperties"] = {
            p["FieldKey"]: next(
                (v for k, v in p.items() if k not in ("FieldKey", "FieldId") and v is not None), None
            )
            for p in out["OtherProperties"]
        }
    return out
