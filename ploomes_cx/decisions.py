"""Duplicate decisions a person made (mapping-and-cli.md §4.4): `mappings/<name>.decisions.csv`
beside the mapping, with the columns `decision,ploomes_ids,note,decided_by,decided_at`.

`same` makes the listed records one even when their identifiers differ; `different` keeps them
apart even when an identifier says otherwise. The file is checked like a mapping: a bad row is a
`DecisionsError` naming its line (exit 2), and so are two rows that contradict each other (a pair
both `same`, through any chain of `same` rows, and `different`).
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from ploomes_cx.mapping import Mapping, MappingError

COLUMNS = ("decision", "ploomes_ids", "note", "decided_by", "decided_at")
KINDS = ("same", "different")


class DecisionsError(MappingError):
    """A decisions file that cannot be honoured; the message names the file and line."""


@dataclass(frozen=True)
class Decision:
    line: int
    decision: str  # same | different
    ids: tuple[int, ...]
    note: str = ""
    decided_by: str = ""
    decided_at: str = ""


def decisions_path(m: Mapping) -> Path:
    """Beside the mapping file; for a built-in mapping, in the user's mappings folder instead, since
    the installed package is not theirs to write and the next install would replace it."""
    from ploomes_cx.mappings_folder import built_in, mappings_dir

    if built_in(m.source_path):
        return mappings_dir() / f"{m.name}.decisions.csv"
    return Path(m.source_path).with_name(f"{m.name}.decisions.csv")


def load_decisions(m: Mapping) -> list[Decision]:
    """The mapping's decisions, in file order; none when it has no file."""
    path = decisions_path(m)
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows or tuple(c.strip() for c in rows[0]) != COLUMNS:
        raise DecisionsError(f"{path}:1: the header must be {','.join(COLUMNS)}")
    decisions = [_row(path, n, row) for n, row in enumerate(rows[1:], start=2) if any(c.strip() for c in row)]
    _no_contradiction(path, decisions)
    return decisions


def _row(path: Path, line: int, row: list[str]) -> Decision:
    if len(row) != len(COLUMNS):
        raise DecisionsError(
            f"{path}:{line}: {len(row)} columns, the header has {len(COLUMNS)} ({','.join(COLUMNS)})"
        )
    decision, ids_text, note, by, at = (c.strip() for c in row)
    if decision not in KINDS:
        raise DecisionsError(f"{path}:{line}: decision must be same or different, not {decision!r}")
    parts = ids_text.split()
    if len(parts) < 2 or not all(p.isdigit() and int(p) > 0 for p in parts) or len(set(parts)) != len(parts):
        raise DecisionsError(
            f"{path}:{line}: ploomes_ids must be two or more different Ploomes Ids separated by spaces, "
            f"not {ids_text!r}"
        )
    if at:
        try:
            dt.datetime.fromisoformat(at)
        except ValueError:
            raise DecisionsError(
                f"{path}:{line}: decided_at must be an ISO date or time, not {at!r}"
            ) from None
    return Decision(line, decision, tuple(int(p) for p in parts), note, by, at)


def check_addable(m: Mapping, decision: str, ids: list[int]) -> None:
    """The DecisionsError adding this row would meet, raised before anything is written or asked."""
    existing = load_decisions(m)
    line = (existing[-1].line if existing else 1) + 1
    _no_contradiction(decisions_path(m), [*existing, Decision(line, decision, tuple(ids))])


def _no_contradiction(path: Path, decisions: list[Decision]) -> None:
    """A `different` pair that `same` rows join (directly or through others) is an error."""
    parent: dict[int, int] = {}
    line_of: dict[int, int] = {}

    def root(x: int) -> int:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for d in decisions:
        if d.decision == "same":
            for other in d.ids[1:]:
                parent[root(other)] = root(d.ids[0])
            for i in d.ids:
                line_of.setdefault(i, d.line)
    for d in decisions:
        if d.decision != "different":
            continue
        for i, a in enumerate(d.ids):
            for b in d.ids[i + 1 :]:
                if root(a) == root(b):
                    raise DecisionsError(
                        f"{path}:{d.line}: {a} and {b} are decided different here and the same on line "
                        f"{line_of.get(a, line_of.get(b))}; delete the row that is wrong"
                    )


def same_groups(decisions: list[Decision]) -> list[tuple[int, ...]]:
    return [d.ids for d in decisions if d.decision == "same"]


def apart_pairs(decisions: list[Decision]) -> set[tuple[int, int]]:
    """Every pair of Ids decided different, smaller Id first."""
    return decided_pairs([d for d in decisions if d.decision == "different"])


def decided_pairs(decisions: list[Decision]) -> set[tuple[int, int]]:
    """Every pair of Ids a decision settled, either way, smaller Id first: no longer candidates."""
    return {(min(a, b), max(a, b)) for d in decisions for i, a in enumerate(d.ids) for b in d.ids[i + 1 :]}


def all_decided(ids: tuple[int, ...] | list[int], pairs: set[tuple[int, int]]) -> bool:
    """Whether every pair of `ids` is among `pairs` (smaller Id first, as `decided_pairs` gives them)."""
    ordered = sorted(int(i) for i in ids)
    return bool(pairs) and all((a, b) in pairs for n, a in enumerate(ordered) for b in ordered[n + 1 :])
