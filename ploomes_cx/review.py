"""What `ploomes-cx review` shows and writes (mapping-and-cli.md §4.4): the open look-alike
candidates of the last staging run, each record's fields side by side, and a decision appended
to the decisions file. It reads the mapping's DuckDB file only: no API is called."""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass

import duckdb

from ploomes_cx.decisions import COLUMNS, Decision, decided_pairs, decisions_path, load_decisions
from ploomes_cx.mapping import Mapping
from ploomes_cx.runtime.duckdb_io import database_path, table_exists
from ploomes_cx.runtime.state import home

# what a person compares, in the order shown
FIELDS = [
    ("name", "name"),
    ("legal_name", "legal name"),
    ("document", "CPF/CNPJ"),
    ("email", "e-mail"),
    ("phone", "phone"),
    ("external_code", "code"),
    ("changed_at", "changed"),
    ("contacts", "contacts"),
    ("deals", "won deals"),
]


class NothingStaged(Exception):
    """The mapping has no staged tables yet: `review` works on what a sync staged."""


@dataclass(frozen=True)
class Candidate:
    ids: tuple[int, ...]
    rule: str
    score: float
    records: dict[int, dict[str, object]]  # Ploomes Id -> field -> value


def open_candidates(m: Mapping) -> list[Candidate]:
    """The candidates the last staging run listed, best score first, without those a decision in
    the file has settled since (every pair decided, either way)."""
    path = database_path(home(), m.name)
    if not path.exists():
        raise NothingStaged(f"nothing staged yet for mapping {m.name} ({path}): run `ploomes-cx sync` first")
    settled = decided_pairs(load_decisions(m))
    with duckdb.connect(str(path), read_only=True) as con:
        if not table_exists(con, m.name, "duplicate_clusters"):
            raise NothingStaged(f"nothing staged yet for mapping {m.name}: run `ploomes-cx sync` first")
        rows = con.execute(
            f"select member_ids, rule, score from {m.name}.duplicate_clusters where kind = 'candidate' "
            "order by score desc, member_ids"
        ).fetchall()
        groups = [
            (tuple(int(i) for i in str(ids).split(",")), str(rule), float(score)) for ids, rule, score in rows
        ]
        groups = [g for g in groups if not _all_settled(g[0], settled)]
        records = _records(con, m.name, {i for ids, _, _ in groups for i in ids})
    return [Candidate(ids, rule, score, {i: records.get(i, {}) for i in ids}) for ids, rule, score in groups]


def _all_settled(ids: tuple[int, ...], settled: set[tuple[int, int]]) -> bool:
    return all((min(a, b), max(a, b)) in settled for n, a in enumerate(ids) for b in ids[n + 1 :])


def _records(con: duckdb.DuckDBPyConnection, schema: str, ids: set[int]) -> dict[int, dict[str, object]]:
    if not ids:
        return {}
    marks = ",".join(str(i) for i in sorted(ids))
    rows = con.execute(
        f"""select c.ploomes_id, c.name, c.legal_name, c.document, c.email, c.phone, c.external_code,
                   strftime(c.changed_at, '%Y-%m-%d %H:%M'),
                   (select count(*) from {schema}.stg_contacts k where k.client_external_id = c.external_id),
                   {_deals(con, schema)}
            from {schema}.stg_clients c where c.ploomes_id in ({marks})"""
    ).fetchall()
    names = [f for f, _ in FIELDS]
    return {int(r[0]): dict(zip(names, r[1:], strict=True)) for r in rows}


def _deals(con: duckdb.DuckDBPyConnection, schema: str) -> str:
    if not table_exists(con, schema, "stg_contracts"):
        return "0"
    return f"(select count(*) from {schema}.stg_contracts d where d.client_external_id = c.external_id)"


def side_by_side(candidate: Candidate, most: int = 40) -> str:
    """The records as columns, one line per field, `≠` where their values differ."""
    ids = candidate.ids
    cells = {
        field: ["" if (v := candidate.records[i].get(field)) is None else str(v) for i in ids]
        for field, _ in FIELDS
    }
    width = min(most, max(len(v) for values in cells.values() for v in values) + 2)
    lines = [f"{'':<13}" + "".join(f"{'Ploomes ' + str(i):<{width}}" for i in ids).rstrip()]
    for field, label in FIELDS:
        mark = " " if len(set(cells[field])) == 1 else "≠"
        lines.append(
            (f"{mark} {label:<11}" + "".join(f"{v[: width - 2]:<{width}}" for v in cells[field])).rstrip()
        )
    return "\n".join(lines)


def append_decision(m: Mapping, decision: str, ids: list[int], note: str, by: str) -> Decision:
    """Add one row to the decisions file (created with its header), after checking that the file
    with it is still valid: a row that would contradict another is refused and nothing is written."""
    path = decisions_path(m)
    new = not path.exists()
    at = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    row = [decision, " ".join(map(str, ids)), note, by, at]
    before = path.read_text(encoding="utf-8") if not new else ""
    with path.open("a", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        if new:
            writer.writerow(COLUMNS)
        elif before and not before.endswith("\n"):
            fh.write("\n")
        writer.writerow(row)
    try:
        return load_decisions(m)[-1]
    except Exception:
        if new:
            path.unlink()
        else:
            path.write_text(before, encoding="utf-8")
        raise
