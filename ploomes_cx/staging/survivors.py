"""Duplicates merged into survivors: the identity rule's clusters (`dedupe.py`) applied to a
party frame, each cluster listed in `duplicate_clusters` and its members kept as aliases."""

from __future__ import annotations

import pandas as pd

from ploomes_cx.decisions import Decision, apart_pairs, same_groups
from ploomes_cx.staging.context import Context
from ploomes_cx.staging.dedupe import cluster_by_identifiers, groups_of
from ploomes_cx.staging.normalize import normalize_names


def merge_duplicates(
    ctx: Context,
    party: pd.DataFrame,
    entity: str,
    attrs: pd.Series,
    table: str = "clients",
    want_aliases: bool = True,
) -> tuple[pd.DataFrame, dict[int, int], int]:
    """Deduplicated records (clients, or contacts); returns (survivors, member id -> survivor id,
    how many were merged away). Nameless records are rejected first, after a client falls back to
    its legal name; a frame without `name_key` (contacts) had its nameless rejected by the caller."""
    if "name_key" in party:
        party = _named(ctx, party, entity)
    ids = party["ploomes_id"].to_numpy()
    named = {i for d in ctx.decisions for i in d.ids}
    ctx.decided_seen.update(named.intersection(ids.tolist()) if named else ())
    result = cluster_by_identifiers(
        party, ctx.m.identifiers, same_groups(ctx.decisions), apart_pairs(ctx.decisions)
    )
    for group in result.unjoined:
        ctx.clusters.append(
            _decision_row(entity, "unjoined", group, "same, but a different decision keeps them apart")
        )
    survivor_ids = ids[result.survivor]
    # a million contacts need no id map: nothing points at a contact
    alias_to_survivor = dict(zip(ids.tolist(), survivor_ids.tolist(), strict=True)) if want_aliases else {}
    is_survivor = survivor_ids == ids
    # the cluster's values go to a copy: the caller's frame keeps each record's own values,
    # whether or not a nameless record was dropped above (a frame not filtered was changed in
    # place before, so organization contacts read the cluster's values or their own by chance)
    party = party.copy(deep=False)
    for col, values in result.values.items():
        party[col] = values
    aliases = _list_clusters(ctx, ids, survivor_ids, result.matched_by, entity, table)
    survivors = party[is_survivor]  # copy-on-write (build.py): no copy needed to add columns
    survivors["aliases"] = survivors["ploomes_id"].map(aliases).fillna("")
    survivors["custom_attributes"] = survivors["ploomes_id"].map(attrs).fillna("{}") if len(attrs) else "{}"
    return survivors, alias_to_survivor, int((~is_survivor).sum())


def _named(ctx: Context, party: pd.DataFrame, entity: str) -> pd.DataFrame:
    missing = party["name_key"].isna()
    if missing.any():
        legal = normalize_names(party.loc[missing, "legal_name"])
        party.loc[missing, "name"] = legal["name"]
        party.loc[missing, "name_key"] = legal["name_key"]
    nameless = party["name_key"].isna()
    if nameless.any():
        reason = party["name_reason"].fillna("name_missing")
        ctx.rejects.add(entity, party, nameless, "name", party["name_raw"], reason)
        party = party[~nameless].reset_index(drop=True)
    return party


def _list_clusters(
    ctx: Context, ids: object, survivor_ids: object, matched_by: list[str | None], entity: str, table: str
) -> dict[int, str]:
    """One `merged` cluster row per survivor with members; returns survivor id -> its aliases.

    Only clusters of two or more are listed (`dedupe.groups_of`)."""
    members, rules = groups_of(survivor_ids, ids, matched_by)
    aliases: dict[int, str] = {}
    for sid, pids in members.items():
        aliases[int(sid)] = ",".join(str(p) for p in pids if p != sid)
        ctx.clusters.append(
            {
                # persons can be both clients and contacts (B2C): the table keeps the ids apart
                "cluster_id": f"{table}:{entity}:{sid}",
                "entity": entity,
                "kind": "merged",
                "survivor_id": int(sid),
                "member_ids": ",".join(map(str, pids)),
                "size": len(pids),
                "rule": "+".join(sorted(map(str, rules.get(sid, ())))),
                "score": 1.0,
            }
        )
    return aliases


def candidate_row(
    table: str, entity: str, rule: str, members: list[int] | tuple[int, ...], score: float
) -> dict[str, object]:
    """A look-alike group listed for a person (`kind` candidate), never merged."""
    return {
        "cluster_id": f"{table}:{entity}:{rule.split('+')[0]}:{members[0]}",
        "entity": entity,
        "kind": "candidate",
        "survivor_id": None,
        "member_ids": ",".join(map(str, members)),
        "size": len(members),
        "rule": rule,
        "score": score,
    }


def _decision_row(entity: str, kind: str, ids: tuple[int, ...], rule: str) -> dict[str, object]:
    """A `duplicate_clusters` row about a person's decision rather than a cluster found."""
    return {
        "cluster_id": f"decision:{entity}:{kind}:{'-'.join(map(str, ids))}",
        "entity": entity,
        "kind": kind,
        "survivor_id": None,
        "member_ids": ",".join(map(str, ids)),
        "size": len(ids),
        "rule": rule,
        "score": 1.0,
    }


def decision_rows(decisions: list[Decision], seen: set[int]) -> list[dict[str, object]]:
    """What the UI lists about the decisions: pairs kept apart, and decisions naming Ids no staged
    party holds (deleted, merged away in Ploomes, or a typo): reported, never fatal."""
    rows = []
    for d in decisions:
        absent = [i for i in d.ids if i not in seen]
        where = f"line {d.line}" + (f" by {d.decided_by}" if d.decided_by else "")
        if absent:
            rows.append(
                _decision_row(
                    "decisions", "missing", d.ids, f"{where}: no record has Id {' '.join(map(str, absent))}"
                )
            )
        elif d.decision == "different":
            rows.append(_decision_row("decisions", "different", d.ids, f"{where}: decided different"))
    return rows
