"""The webhooks a mapping needs on Ploomes (mapping-and-cli.md §4.3, ploomes-api.md §10), and
registering or removing them through `/Webhooks`.

One webhook per entity and action: create, update and delete on every set the mapping reads,
and win, lose and reopen on deals. The numbers behind entities and actions are not confirmed
(I), so they are read from the account (`/Webhooks@Actions`, `/Fields@Entities`) by name, with
the confirmed entity numbers (1 contact, 2 deal, 4 order, 12 task) as a fallback and the
mapping's `webhooks.action_ids` / `entity_ids` above both. Registering is idempotent: a webhook
with the same callback URL, entity and action is kept (and given the current key), never doubled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ploomes_cx.mapping import Mapping
from ploomes_cx.plan import Plan
from ploomes_cx.ploomes.client import CallStats, PloomesApi

RECORD_ACTIONS = ("create", "update", "delete")
DEAL_ACTIONS = ("win", "lose", "reopen")
# the raw extract -> the webhook entity whose changes it follows
ENTITY_OF = {
    "organizations": "contact",
    "persons": "contact",
    "deals": "deal",
    "orders": "order",
    "quotes": "quote",
    "notes": "interaction_record",
    "tasks": "task",
}
# the entity set a callback's `Entity` names -> our webhook entity
ENTITY_OF_SET = {
    "Contacts": "contact",
    "Deals": "deal",
    "Orders": "order",
    "Quotes": "quote",
    "InteractionRecords": "interaction_record",
    "Tasks": "task",
}
CONFIRMED_ENTITY_IDS = {"contact": 1, "deal": 2, "order": 4, "task": 12}  # C [S2] (ploomes-api.md §6)


class WebhookSetupError(ValueError):
    """The account's catalogues do not name what the mapping needs; the message says what to set."""


@dataclass(frozen=True)
class Wanted:
    entity: str  # contact, deal, ...
    action: str  # create, update, ...
    entity_id: int
    action_id: int


@dataclass
class Registration:
    kept: list[Wanted] = field(default_factory=list)
    created: list[Wanted] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    not_followed: list[str] = field(default_factory=list)  # extracts no webhook entity exists for
    stats: CallStats = field(default_factory=CallStats)


def followed(m: Mapping) -> tuple[list[str], list[str]]:
    """The webhook entities the mapping's extracts need, and the extracts none follows
    (attachments: their changes arrive with the windows)."""
    extracts = Plan.of(m).entity_extracts
    entities = list(dict.fromkeys(ENTITY_OF[e] for e in extracts if e in ENTITY_OF))
    return entities, [e for e in extracts if e not in ENTITY_OF]


def _by_name(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Catalogue rows by a folded name: `InteractionRecord`, `Interaction Record`, `interaction_record`."""
    return {str(r.get("Name", "")).lower().replace(" ", "").replace("_", ""): int(r["Id"]) for r in rows}


def wanted(m: Mapping, api: PloomesApi, stats: CallStats) -> tuple[list[Wanted], list[str]]:
    """Every (entity, action) the mapping needs with its numbers, and the extracts not followed."""
    actions = _by_name(api.get("/Webhooks@Actions", {}, stats).get("value", []))
    entities = _by_name(api.get("/Fields@Entities", {}, stats).get("value", []))
    needed, not_followed = followed(m)
    out: list[Wanted] = []
    problems: list[str] = []
    for entity in needed:
        entity_id = m.webhooks.entity_ids.get(entity) or entities.get(entity.replace("_", ""))  # type: ignore[call-overload]
        entity_id = entity_id or CONFIRMED_ENTITY_IDS.get(entity)
        if entity_id is None:
            problems.append(f"entity {entity!r} is not in /Fields@Entities: set webhooks.entity_ids.{entity}")
            continue
        for action in RECORD_ACTIONS + (DEAL_ACTIONS if entity == "deal" else ()):
            action_id = m.webhooks.action_ids.get(action) or actions.get(action)  # type: ignore[call-overload]
            if action_id is None:
                problems.append(
                    f"action {action!r} is not in /Webhooks@Actions: set webhooks.action_ids.{action}"
                )
                continue
            out.append(Wanted(entity, action, entity_id, action_id))
    if problems:
        raise WebhookSetupError(
            f"{m.source_path}: {'; '.join(dict.fromkeys(problems))} (the account lists actions "
            f"{sorted(actions)} and entities {sorted(entities)})"
        )
    return out, not_followed


def register(m: Mapping, api: PloomesApi, url: str, key: str) -> Registration:
    """Make Ploomes hold exactly one webhook per wanted (entity, action) at `url`."""
    done = Registration()
    needs, done.not_followed = wanted(m, api, done.stats)
    existing = _ours(api, url, done.stats)
    for w in needs:
        hook_id = existing.get((w.entity_id, w.action_id))
        if hook_id is not None:
            # kept, with the current key: a key rotated in the environment reaches Ploomes here
            api.write("PATCH", f"/Webhooks({hook_id})", {"ValidationKey": key}, done.stats)
            done.kept.append(w)
            continue
        body = {"EntityId": w.entity_id, "ActionId": w.action_id, "CallbackUrl": url, "ValidationKey": key}
        api.write("POST", "/Webhooks", body, done.stats)
        done.created.append(w)
    return done


def unregister(m: Mapping, api: PloomesApi, url: str) -> Registration:
    """Remove the webhooks at `url` for what the mapping follows; any other webhook stays."""
    done = Registration()
    needs, done.not_followed = wanted(m, api, done.stats)
    pairs = {(w.entity_id, w.action_id) for w in needs}
    for pair, hook_id in sorted(_ours(api, url, done.stats).items()):
        if pair in pairs:
            api.write("DELETE", f"/Webhooks({hook_id})", None, done.stats)
            done.removed.append(hook_id)
    return done


def _ours(api: PloomesApi, url: str, stats: CallStats) -> dict[tuple[int, int], int]:
    """The webhooks registered at `url`: (EntityId, ActionId) -> webhook Id."""
    hooks: dict[tuple[int, int], int] = {}
    for page in api.iter_pages("/Webhooks", stats):
        for hook in page:
            if str(hook.get("CallbackUrl", "")).rstrip("/") == url.rstrip("/"):
                hooks.setdefault((int(hook["EntityId"]), int(hook["ActionId"])), int(hook["Id"]))
    return hooks
