"""The records behind a batch of webhook events, re-read from Ploomes by Id (§4.3): the payload
a webhook carries is a hint, never the truth (it may be older than the record, and its custom
fields come in another shape). HTTP only, through the client."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from ploomes_cx.live.events import Event
from ploomes_cx.mapping import Mapping
from ploomes_cx.plan import Plan
from ploomes_cx.ploomes.client import CallStats, PloomesApi
from ploomes_cx.ploomes.entities import ENTITIES
from ploomes_cx.raw.dependencies import CONTACT_TYPES
from ploomes_cx.raw.frames import Fetched

# the entity set a callback names -> the raw extracts its records are stored as
SET_EXTRACTS = {
    "Contacts": ("organizations", "persons"),
    "Deals": ("deals",),
    "Orders": ("orders",),
    "Quotes": ("quotes",),
    "InteractionRecords": ("notes",),
    "Tasks": ("tasks",),
}


EVENT_MARK = re.compile(r"\(event (\d+)\)")  # how a live row's `needed_by` names its events


def named_events(needed_by: str) -> set[int]:
    """The event seqs a live row was read for (`webhook Update (event 12), Win (event 13)`)."""
    return {int(seq) for seq in EVENT_MARK.findall(needed_by)}


@dataclass
class Reread:
    fetched: list[Fetched] = field(default_factory=list)  # found, each as the raw entity it is
    gone: dict[tuple[str, int], str] = field(default_factory=dict)  # (set path, Id) of a delete -> when
    not_found: list[tuple[str, int]] = field(default_factory=list)  # missing without a delete event
    ignored: list[tuple[str, int]] = field(default_factory=list)  # sets or types the mapping does not read


def reread(api: PloomesApi, m: Mapping, events: list[Event], stats: CallStats) -> Reread:
    """Each record the events name, read once. A record Ploomes no longer returns is gone when one
    of its events is a delete; without one it is reported and left to `reconcile`, since an empty
    answer alone is too weak a reason to remove anything from CustomerX."""
    extracts = set(Plan.of(m).entity_extracts)
    by_set: dict[str, dict[int, list[Event]]] = defaultdict(lambda: defaultdict(list))
    for e in events:
        by_set[e.entity_set][e.record_id].append(e)
    out = Reread()
    for entity_set, records in by_set.items():
        wanted = [x for x in SET_EXTRACTS.get(entity_set, ()) if x in extracts]
        if not wanted:
            out.ignored += [(entity_set, i) for i in records]
            continue
        spec = ENTITIES[wanted[0]]
        found: set[int] = set()
        for page in api.iter_by_ids(spec.path, list(records), spec.expand, stats):
            for record in page:
                record_id = int(record["Id"])
                found.add(record_id)
                entity = (
                    CONTACT_TYPES.get(record.get("TypeId"), "") if entity_set == "Contacts" else wanted[0]
                )
                if entity not in extracts:
                    out.ignored.append((entity_set, record_id))
                    continue
                why = ", ".join(f"{e.action} (event {e.seq})" for e in records[record_id])
                out.fetched.append(Fetched(entity, record_id, record, f"webhook {why}"))
        for record_id, its in records.items():
            if record_id in found:
                continue
            deletes = [e for e in its if e.action.lower() == "delete"]
            if deletes:
                out.gone[(spec.path, record_id)] = deletes[-1].received_at
            else:
                out.not_found.append((entity_set, record_id))
    return out
