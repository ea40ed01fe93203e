"""Asset checks on the staging tables, each with a small markdown table of the worst offenders."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pandas as pd

from ploomes_cx.decisions import Decision, all_decided, apart_pairs
from ploomes_cx.identity import IDENTIFIER_COLUMNS, any_same_record
from ploomes_cx.mapping import Mapping
from ploomes_cx.metadata import REVIEW_WITH, TO_REVIEW, markdown
from ploomes_cx.plan import Plan


def duplicate_identifiers(
    frame: pd.DataFrame, identifiers: list[str], apart: set[tuple[int, int]] | None = None
) -> pd.DataFrame:
    """Groups of staged rows sharing a mapped identifier that the identity rule says are one record.

    Sharing a value is allowed exactly when the rule keeps the rows apart (two different valid
    documents, or a higher-priority identifier that differs), which is when dedupe left them apart,
    or when a person decided every pair of the group different (`apart`, Ploomes Ids).
    """
    found = []
    columns = [c for c in ("document", "external_code", "email") if c in frame]
    for ident in identifiers:
        col = IDENTIFIER_COLUMNS[ident]
        if col not in frame:
            continue
        shared = frame[frame[col].notna() & frame[col].duplicated(keep=False)]
        for value, group in shared.groupby(col):
            if not any_same_record(group[columns], identifiers) or _decided_apart(group, apart):
                continue
            found.append(
                {
                    "identifier": ident,
                    "value": value,
                    "rows": len(group),
                    "external_ids": ",".join(group["external_id"].astype(str).head(5)),
                }
            )
    return pd.DataFrame(found, columns=["identifier", "value", "rows", "external_ids"])


def _decided_apart(group: pd.DataFrame, apart: set[tuple[int, int]] | None) -> bool:
    return bool(apart) and "ploomes_id" in group and all_decided(list(group["ploomes_id"]), apart or set())


def no_duplicate_identifiers(
    key: dg.AssetKey, frame: pd.DataFrame, identifiers: list[str], apart: set[tuple[int, int]] | None = None
) -> dg.AssetCheckResult:
    offenders = duplicate_identifiers(frame, identifiers, apart)
    return dg.AssetCheckResult(
        asset_key=key,
        check_name="no_duplicate_identifiers",
        passed=offenders.empty,
        metadata={
            "duplicated_values": len(offenders),
            "identifiers": ", ".join(identifiers),
            "offenders": markdown(offenders),
        },
    )


def rejected_ratio(
    key: dg.AssetKey, counts: dict[str, int], rejects: pd.DataFrame, entity_names: set[str], max_ratio: float
) -> dg.AssetCheckResult:
    extracted = counts.get("extracted", 0)
    ratio = counts.get("rejected", 0) / extracted if extracted else 0.0
    mine = rejects[rejects["entity"].isin(entity_names) & (rejects["outcome"] == "rejected")]
    top = mine.groupby("rule").size().sort_values(ascending=False).rename("rows").reset_index()
    return dg.AssetCheckResult(
        asset_key=key,
        check_name="rejected_ratio",
        passed=ratio <= max_ratio,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "ratio": round(ratio, 4),
            "max_ratio": max_ratio,
            "rejected": counts.get("rejected", 0),
            "extracted": extracted,
            "top_rules": markdown(top),
            "examples": markdown(mine),
        },
    )


def lookalikes_description(name: str) -> str:
    """What the `fuzzy_candidates` check means, as the UI shows it beside the check."""
    return (
        f"Look-alike clients (similar names, related records) are candidates for a person to review with "
        f"`ploomes-cx review {name}`, not errors: the sync never merges them on its own. The check has WARN "
        f"severity, so nothing is blocked. Dagster shows any warning-severity check that did not pass as "
        f"'Failed' (in yellow): shown as a failed warning-severity check while look-alikes wait for review; "
        f"it blocks nothing."
    )


def fuzzy_candidates(key: dg.AssetKey, clusters: pd.DataFrame, name: str) -> dg.AssetCheckResult:
    """Look-alikes waiting for a person: a WARN result that blocks nothing, saying what to run."""
    candidates = clusters[clusters["kind"] == "candidate"].sort_values("score", ascending=False)
    n = len(candidates)
    waiting = (
        f"{n} look-alike(s) to review with `ploomes-cx review {name}`" if n else "no look-alikes to review"
    )
    return dg.AssetCheckResult(
        asset_key=key,
        check_name="fuzzy_candidates",
        passed=candidates.empty,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{waiting}. Candidates for review, not errors; WARN severity, it blocks nothing.",
        metadata={
            "candidates": n,
            TO_REVIEW: n,
            REVIEW_WITH: f"ploomes-cx review {name}",
            "what_this_means": lookalikes_description(name),
            "worst": markdown(candidates[["member_ids", "rule", "score"]]),
        },
    )


def referential_integrity(
    key: dg.AssetKey, frame: pd.DataFrame, clients: pd.DataFrame
) -> dg.AssetCheckResult:
    orphans = frame[~frame["client_external_id"].isin(set(clients["external_id"]))]
    return dg.AssetCheckResult(
        asset_key=key,
        check_name="client_exists",
        passed=orphans.empty,
        metadata={
            "orphans": len(orphans),
            "offenders": markdown(orphans[["external_id", "client_external_id"]]),
        },
    )


def _source_entities(entity: str) -> set[str]:
    """Names under which rejected rows of a staging table are recorded."""
    by_table: dict[str, set[str]] = {
        "clients": {"organizations", "persons", "deal_contacts"},
        "contacts": {"persons", "organization_contacts", "deal_persons"},
        "contracts": {"won_deals", "deal_products"},
        "timeline": {"notes", "tasks", "attachments"},
    }
    return by_table[entity] | {f"stg_{entity}"}


def staging_check_specs(plan: Plan, m: Mapping) -> list[dg.AssetCheckSpec]:
    key, entities = plan.staging_key, list(plan.staged)
    specs = [
        dg.AssetCheckSpec(
            "no_duplicate_identifiers",
            asset=key(e),
            blocking=True,
            description="No two staged rows are the same record by the mapping's identifiers",
        )
        for e in ("clients", "contacts")
    ]
    specs += [
        dg.AssetCheckSpec(
            "client_exists", asset=key(e), blocking=True, description="Every row points at a staged client"
        )
        for e in entities
        if e != "clients"
    ]
    specs += [
        dg.AssetCheckSpec(
            "rejected_ratio",
            asset=key(e),
            description=f"Rejected records stay under {m.quality.max_rejected_ratio:.0%}",
        )
        for e in entities
    ]
    specs.append(
        dg.AssetCheckSpec(
            "fuzzy_candidates",
            asset=key("duplicate_clusters"),
            description=lookalikes_description(m.name),
        )
    )
    return specs


def staging_check_results(
    plan: Plan,
    m: Mapping,
    tables: dict[str, pd.DataFrame],
    counts: dict[str, dict[str, int]],
    decisions: list[Decision] | None = None,
) -> Iterator[dg.AssetCheckResult]:
    """The results of every check `staging_check_specs` declares, in the same order."""
    key = plan.staging_key
    apart = apart_pairs(decisions or [])
    for entity in ("clients", "contacts"):
        yield no_duplicate_identifiers(key(entity), tables[entity], m.identifiers, apart)
    for entity in plan.staged:
        if entity != "clients":
            yield referential_integrity(key(entity), tables[entity], tables["clients"])
        yield rejected_ratio(
            key(entity),
            counts[entity],
            tables["rejected"],
            _source_entities(entity),
            m.quality.max_rejected_ratio,
        )
    yield fuzzy_candidates(key("duplicate_clusters"), tables["duplicate_clusters"], m.name)
