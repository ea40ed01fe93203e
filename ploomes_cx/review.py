"""What `ploomes-cx review` shows and writes (mapping-and-cli.md §4.4): the open look-alike
candidates of the last staging run, each record's fields side by side, and a decision appended
to the decisions file. It reads the mapping's DuckDB file only: no API is called."""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, field

import duckdb

from ploomes_cx.decisions import COLUMNS, Decision, all_decided, decided_pairs, decisions_path, load_decisions
from ploomes_cx.mapping import Mapping
from ploomes_cx.runtime.duckdb_io import database_path, read_only, table_exists
from ploomes_cx.runtime.state import home

# what a person compares, in the order shown: clients
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
    # both loaded: `same` moves what one holds to the other and applies deletes.policy to it
    ("customerx", "CustomerX"),
]
# kept with each client record, not shown: the CustomerX id holding it, and its change time
HELD_ID, CHANGED = "customerx_id", "changed_ts"
CONTACT_FIELDS = [
    ("name", "name"),
    ("email", "e-mail"),
    ("phone", "phone"),
    ("document", "CPF"),
    ("external_code", "code"),
    ("changed_at", "changed"),
    ("client_external_id", "client"),
]


class NothingStaged(Exception):
    """The mapping has no staged tables yet: `review` works on what a sync staged."""


@dataclass(frozen=True)
class Candidate:
    ids: tuple[int, ...]
    rule: str
    score: float
    records: dict[int, dict[str, object]]  # Ploomes Id -> field -> value
    fields: list[tuple[str, str]] = field(default_factory=lambda: list(FIELDS))  # (column, label) shown


def open_candidates(m: Mapping) -> list[Candidate]:
    """The candidates the last staging run listed, best score first, without those a decision in
    the file has settled since (every pair decided, either way)."""
    path = database_path(home(), m.name)
    if not path.exists():
        raise NothingStaged(f"nothing staged yet for mapping {m.name} ({path}): run `ploomes-cx sync` first")
    settled = decided_pairs(load_decisions(m))
    with read_only(path) as con:
        if not table_exists(con, m.name, "duplicate_clusters"):
            raise NothingStaged(f"nothing staged yet for mapping {m.name}: run `ploomes-cx sync` first")
        rows = con.execute(
            f"select member_ids, rule, score, cluster_id like 'contacts:%' from {m.name}.duplicate_clusters "
            "where kind = 'candidate' order by score desc, member_ids"
        ).fetchall()
        groups = [
            (tuple(int(i) for i in str(ids).split(",")), str(rule), float(score), bool(contacts))
            for ids, rule, score, contacts in rows
        ]
        groups = [g for g in groups if not all_decided(g[0], settled)]
        clients = _records(con, m.name, {i for g in groups if not g[3] for i in g[0]})
        contacts = _contact_records(con, m.name, {i for g in groups if g[3] for i in g[0]})
    return [
        Candidate(
            ids,
            rule,
            score,
            {i: (contacts if is_contact else clients).get(i, {}) for i in ids},
            list(CONTACT_FIELDS if is_contact else FIELDS),
        )
        for ids, rule, score, is_contact in groups
    ]


def _records(con: duckdb.DuckDBPyConnection, schema: str, ids: set[int]) -> dict[int, dict[str, object]]:
    if not ids:
        return {}
    marks = ",".join(str(i) for i in sorted(ids))
    rows = con.execute(
        f"""select c.ploomes_id, c.name, c.legal_name, c.document, c.email, c.phone, c.external_code,
                   strftime(c.changed_at, '%Y-%m-%d %H:%M'),
                   (select count(*) from {schema}.stg_contacts k where k.client_external_id = c.external_id),
                   {_deals(con, schema)}, {_held(con, schema)}, {_held_id(con, schema)}, c.changed_at
            from {schema}.stg_clients c where c.ploomes_id in ({marks})"""
    ).fetchall()
    names = [f for f, _ in FIELDS] + [HELD_ID, CHANGED]
    return {int(r[0]): dict(zip(names, r[1:], strict=True)) for r in rows}


def _contact_records(
    con: duckdb.DuckDBPyConnection, schema: str, ids: set[int]
) -> dict[int, dict[str, object]]:
    if not ids:
        return {}
    columns = [f for f, _ in CONTACT_FIELDS]
    shown = ", ".join(f"strftime({c}, '%Y-%m-%d %H:%M')" if c == "changed_at" else c for c in columns)
    rows = con.execute(
        f"select ploomes_id, {shown} from {schema}.stg_contacts where ploomes_id in ({','.join(map(str, sorted(ids)))})"
    ).fetchall()
    return {int(r[0]): dict(zip(columns, r[1:], strict=True)) for r in rows}


def _deals(con: duckdb.DuckDBPyConnection, schema: str) -> str:
    if not table_exists(con, schema, "stg_contracts"):
        return "0"
    return f"(select count(*) from {schema}.stg_contracts d where d.client_external_id = c.external_id)"


def _held(con: duckdb.DuckDBPyConnection, schema: str) -> str:
    """Which CustomerX client holds the record, if a sync loaded it."""
    if not table_exists(con, schema, "crosswalk"):
        return "'not loaded'"
    return f"""coalesce((select 'client ' || x.customerx_id from {schema}.crosswalk x
                         where x.entity = 'clients' and x.external_id = c.external_id and x.state = 'sent'),
                        'not loaded')"""


def _held_id(con: duckdb.DuckDBPyConnection, schema: str) -> str:
    """The CustomerX id of the client holding the record, as `load/merges.py` reads it (`sent`)."""
    if not table_exists(con, schema, "crosswalk"):
        return "null"
    return f"""(select x.customerx_id from {schema}.crosswalk x
                where x.entity = 'clients' and x.external_id = c.external_id and x.state = 'sent')"""


def survivor(candidate: Candidate) -> int:
    """The record `same` keeps (staging/dedupe.py): the most recently changed, ties the lower Id."""

    def rank(i: int) -> tuple[bool, float, int]:
        changed = candidate.records[i].get(CHANGED)
        known = isinstance(changed, dt.datetime)
        return (not known, -changed.timestamp() if isinstance(changed, dt.datetime) else 0.0, i)

    return min(candidate.ids, key=rank)


def merge_in_customerx(m: Mapping, candidate: Candidate) -> str | None:
    """What the next sync does in CustomerX if these clients are decided `same` (load/merges.py),
    in one line; None unless CustomerX already holds two or more of them as clients."""
    held = {i: candidate.records[i].get(HELD_ID) for i in candidate.ids}
    held = {i: h for i, h in held.items() if h is not None}
    if len(held) < 2:
        return None  # the survivor adopts the one CustomerX record there is: nothing moves
    keep = survivor(candidate)
    others = [i for i in held if i != keep]
    away = " and ".join(f"client {held[i]} (Ploomes {i})" for i in others)
    short = " and ".join(f"client {held[i]}" for i in others)
    if keep in held:
        kept, onto = f"client {held[keep]} (Ploomes {keep}, changed last)", f"client {held[keep]}"
    else:  # the survivor is not loaded yet: it takes over one of them, the others are merged into it
        kept, onto = f"Ploomes {keep} (changed last, not loaded yet), which takes over one of them", "it"
        away = short = "the other(s)"
    fate = (
        f"deletes {short} in CustomerX (deletes.policy: delete)"
        if m.deletes.policy == "delete"
        else f"keeps {short} in CustomerX as it is, no longer updated (deletes.policy: {m.deletes.policy})"
    )
    return (
        f"CustomerX already holds these as {len(held)} clients: `same` keeps {kept}; the next sync moves "
        f"what {away} holds to {onto} (contacts deleted there and created again, contracts updated onto "
        f"it, timeline entries posted again, the old ones staying), then {fate}."
    )


def merge_in_customerx_for(m: Mapping, ids: list[int]) -> str | None:
    """The same line for Ids named on the command line (`review --same`), from what was staged."""
    path = database_path(home(), m.name)
    if not path.exists():
        return None
    with read_only(path) as con:
        if not table_exists(con, m.name, "stg_clients"):
            return None
        records = _records(con, m.name, set(ids))
    if len(records) < 2:
        return None
    return merge_in_customerx(m, Candidate(tuple(ids), "same", 1.0, {i: records.get(i, {}) for i in ids}))


def side_by_side(candidate: Candidate, most: int = 40) -> str:
    """The records as columns, one line per field, `≠` where their values differ."""
    ids = candidate.ids
    cells = {
        name: ["" if (v := candidate.records[i].get(name)) is None else str(v) for i in ids]
        for name, _ in candidate.fields
    }
    width = min(most, max(len(v) for values in cells.values() for v in values) + 2)
    lines = [f"{'':<13}" + "".join(f"{'Ploomes ' + str(i):<{width}}" for i in ids).rstrip()]
    for name, label in candidate.fields:
        mark = " " if len(set(cells[name])) == 1 else "≠"
        lines.append(
            (f"{mark} {label:<11}" + "".join(f"{v[: width - 2]:<{width}}" for v in cells[name])).rstrip()
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
    path.parent.mkdir(parents=True, exist_ok=True)
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
