"""Which Ploomes record each record we hold in CustomerX comes from, read off our external id.

The external ids are ours (staging writes them): a client is its Ploomes contact's Id, a contact
its contact's Id (`org-<Id>` for an organization loaded as a contact), a contract its deal's Id
(`<deal>-<order|quote>-<line>` for a product line), a timeline entry `<kind>-<Id>`. A contract
of a product line is gone when its deal is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ploomes_cx.mapping import Mapping
from ploomes_cx.ploomes.entities import ENTITIES
from ploomes_cx.ploomes.payloads import TIMELINE_SOURCES

CONTACTS_SET = ENTITIES["organizations"].path  # organizations and persons are both /Contacts
DEALS_SET = ENTITIES["deals"].path
TIMELINE_SETS = {source.prefix: ENTITIES[source.entity].path for source in TIMELINE_SOURCES.values()}
# the raw dependency kind each set's missing parents are listed under (staging/tables.missing_parents)
PARENT_KINDS = {CONTACTS_SET: "contacts", DEALS_SET: "deals"}

_CONTACT = re.compile(r"(?:org-)?(\d+)")
_CONTRACT = re.compile(r"(\d+)(?:-(?:order|quote)-\d+)?")
_TIMELINE = re.compile(r"([a-z]+)-(\d+)")


@dataclass(frozen=True)
class Origin:
    ploomes_set: str  # OData entity set path, e.g. /Contacts
    ploomes_id: int


def origin(entity: str, external_id: str) -> Origin | None:
    """The Ploomes record behind one of our CustomerX records; None for an id we did not write in
    any of these forms (it is then never removed, and the report counts it)."""
    if entity in ("clients", "contacts"):
        match = _CONTACT.fullmatch(external_id)
        return Origin(CONTACTS_SET, int(match.group(1))) if match else None
    if entity == "contracts":
        match = _CONTRACT.fullmatch(external_id)
        return Origin(DEALS_SET, int(match.group(1))) if match else None
    match = _TIMELINE.fullmatch(external_id)
    if entity == "timeline" and match and match.group(1) in TIMELINE_SETS:
        return Origin(TIMELINE_SETS[match.group(1)], int(match.group(2)))
    return None


def sets_for(m: Mapping, entities: set[str]) -> list[str]:
    """The Ploomes sets whose Ids a reconcile must list: those behind the CustomerX records held."""
    wanted: list[str] = []
    if entities & {"clients", "contacts"}:
        wanted.append(CONTACTS_SET)
    if "contracts" in entities:
        wanted.append(DEALS_SET)
    if "timeline" in entities:
        wanted += [ENTITIES[TIMELINE_SOURCES[kind].entity].path for kind in m.timeline]
    return list(dict.fromkeys(wanted))
