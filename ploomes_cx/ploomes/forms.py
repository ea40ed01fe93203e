"""Which query form the sync uses for each capability the spec leaves unsure, kept in the state folder.

ploomes-api.md confirms some query forms and only infers others (`Id in (...)`, `or`, a
`LastUpdateDate` window on Orders and Quotes, a dated `/Attachments` listing, paging
`GetDeletedDeals`). Each such capability is probed once, read-only (`probes.py`), and the form
chosen is written to `$PLOOMES_CX_HOME/probes/<mapping>.json`, so later runs do not probe again;
when the stored form is refused later, the capability is probed again and the file updated.
A stored fallback (any form but the preferred first one) is probed again once it is
`FALLBACK_DAYS` old, so a refusal that was the account's state then (or a form Ploomes has since
learned) does not cost the slower form for ever; the preferred form is kept until refused.
Deleting the file (or the state folder) makes the next sync probe everything again. No HTTP here.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ploomes_cx.runtime.state import home

# capability -> its forms, the preferred (fewest requests) first and the spec-confirmed one last
CAPABILITIES: dict[str, tuple[str, ...]] = {
    "id_list": ("in", "or", "eq"),
    "orders_window": ("window", "deals"),
    "quotes_window": ("window", "deals"),
    "attachments_window": ("window", "id_windows"),
    "deleted_deals": ("paged", "sliced"),
}
FALLBACK_DAYS = 30  # a stored fallback older than this is probed again by the next sync


def forms_file(mapping_name: str) -> Path:
    return home() / "probes" / f"{mapping_name}.json"


@dataclass
class Forms:
    """The chosen form per capability. `path` None keeps them in memory only (`ploomes-cx check`
    writes nothing); `pinned` are forms the mapping fixes (`ploomes.id_list_filter`), never probed."""

    path: Path | None = None
    chosen: dict[str, str] = field(default_factory=dict)
    pinned: dict[str, str] = field(default_factory=dict)
    probed_at: dict[str, str] = field(default_factory=dict)  # ISO time each chosen form was stored

    @classmethod
    def stored(cls, mapping_name: str, pinned: dict[str, str] | None = None) -> Forms:
        path = forms_file(mapping_name)
        entries = {k: v for k, v in _entries(path).items() if k in CAPABILITIES}
        chosen = {k: str(v.get("form")) for k, v in entries.items()}
        probed_at = {k: str(v.get("probed_at", "")) for k, v in entries.items()}
        return cls(path, chosen, dict(pinned or {}), probed_at)

    def get(self, capability: str) -> str | None:
        """The pinned form, else the stored one unless it is a fallback gone stale (then None:
        probe again)."""
        form = self.pinned.get(capability)
        if form is None:
            form = self.chosen.get(capability)
            if form != CAPABILITIES[capability][0] and _stale(self.probed_at.get(capability, "")):
                return None
        return form if form in CAPABILITIES[capability] else None

    def set(self, capability: str, form: str, detail: str) -> None:
        """Keep `form`, and write it with when and why to the file (merged with what other steps
        wrote meanwhile, replaced atomically: a reader never sees half a file)."""
        if form not in CAPABILITIES[capability]:
            raise ValueError(f"{form!r} is not a form of {capability}")
        self.chosen[capability] = form
        self.probed_at[capability] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        on_disk = _entries(self.path)
        on_disk[capability] = {"form": form, "detail": detail, "probed_at": self.probed_at[capability]}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".probes-")
        with os.fdopen(fd, "w") as out:
            json.dump(on_disk, out, indent=2, sort_keys=True)
        os.replace(tmp, self.path)


def _entries(path: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: probed again, which is always safe
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def _stale(probed_at: str) -> bool:
    """Older than `FALLBACK_DAYS`, or with no readable time (probing again is always safe)."""
    try:
        when = dt.datetime.fromisoformat(probed_at)
    except ValueError:
        return True
    when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return dt.datetime.now(dt.UTC) - when > dt.timedelta(days=FALLBACK_DAYS)
