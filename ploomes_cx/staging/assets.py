"""Staging layer: cleaned, deduplicated tables validated by Pandera, one per CustomerX entity.

One multi-asset per mapping computes them together from all raw windows, because they depend on
each other (a merged organization changes which client a person's contact points at). The tables
are not partitioned: each materialization recomputes the whole account, so deduplication is
global and the latest version of a record wins whichever window ran last.
"""

from collections.abc import Iterator

import dagster as dg
import pandas as pd
from dagster import AssetExecutionContext
from dagster_duckdb import DuckDBResource

from ploomes_cx.decisions import DecisionsError
from ploomes_cx.mapping import Mapping
from ploomes_cx.metadata import Count, ErrorKind, failure, markdown
from ploomes_cx.plan import Plan
from ploomes_cx.runtime.duckdb_io import connection
from ploomes_cx.staging import checks
from ploomes_cx.staging.build import Staged, build_staging, staging_mode
from ploomes_cx.staging.rejects import Rejects
from ploomes_cx.staging.schemas import DAGSTER_TYPES, MODELS, split_valid, validate

DESCRIPTIONS = {
    "clients": "CustomerX clients: one row per client after deduplication (survivors), identifiers normalized, "
    "aliases listing the merged Ploomes ids, mapped custom fields as JSON.",
    "contacts": "CustomerX contacts, each attached to a staged client, deduplicated by the mapping's identifiers.",
    "contracts": "CustomerX contracts: won deals, or the product lines of won deals, attached to a staged client.",
    "timeline": "CustomerX timeline entries (notes, activities, attachments) at their original date, on a staged client.",
    "rejected": "Every record (outcome `rejected`) or field (`field_cleared`) that did not reach staging, with the "
    "rule it broke: query it with `select * from <mapping>.rejected`.",
    "duplicate_clusters": "Records merged by identifier (`merged`, with the rule that matched) and look-alike records "
    "left for a person to decide (`candidate`, with a similarity score).",
}


def _apply_contracts(staged: Staged, entities: list[str], run_id: str) -> dict[str, pd.DataFrame]:
    """Validate each table; rows breaking a contract, and rows left pointing at them, are rejected."""
    tables: dict[str, pd.DataFrame] = {}
    rejects = Rejects(run_id)
    dropped_clients: set[str] = set()  # clients the contracts rejected
    for entity in entities:
        frame, before = getattr(staged, entity), len(getattr(staged, entity))
        if entity != "clients" and dropped_clients:
            # staging points every row at a staged client (the client_exists check verifies it);
            # only the clients rejected here leave rows without one
            orphan = frame["client_external_id"].isin(dropped_clients)
            rejects.add(
                f"stg_{entity}", frame, orphan, "client", frame["client_external_id"], "client_rejected"
            )
            frame = frame[~orphan].reset_index(drop=True)
        valid, cases = split_valid(MODELS[entity], frame)
        if len(cases):
            first = cases.drop_duplicates("index").set_index("index")
            first.index = first.index.astype(int)
            broken = frame.index.isin(first.index)
            rejects.add(
                f"stg_{entity}",
                frame,
                pd.Series(broken, index=frame.index),
                first["column"].astype(str).reindex(frame.index),
                first["failure_case"].reindex(frame.index),
                ("contract:" + first["check"].astype(str)).reindex(frame.index),
            )
        tables[entity] = valid.reset_index(drop=True)
        if entity == "clients" and len(valid) < before:
            dropped_clients = set(frame["external_id"]) - set(valid["external_id"])
        dropped = before - len(tables[entity])
        staged.counts[entity]["staged"] -= dropped
        staged.counts[entity]["rejected"] += dropped
    rejected = (
        pd.concat([staged.rejected, rejects.frame()], ignore_index=True) if rejects.parts else staged.rejected
    )
    tables["rejected"] = validate(MODELS["rejected"], rejected.reset_index(drop=True))
    tables["duplicate_clusters"] = validate(MODELS["duplicate_clusters"], staged.clusters)
    return tables


PREVIEW_COLUMNS = [
    "external_id",
    "name",
    "client_external_id",
    "email",
    "document",
    "title",
    "value",
    "kind",
    "occurred_at",
]


def _outs(plan: Plan, outputs: list[str]) -> dict[str, dg.AssetOut]:
    return {
        name: dg.AssetOut(
            key=plan.staging_key(name),
            dagster_type=DAGSTER_TYPES[name],
            io_manager_key=plan.io_manager,
            group_name=plan.group("staging"),
            kinds={"duckdb", "pandas"},
            description=DESCRIPTIONS[name],
            metadata={"dagster/column_schema": DAGSTER_TYPES[name].metadata["schema"].schema},
        )
        for name in outputs
    }


def _table_outputs(
    tables: dict[str, pd.DataFrame], staged: Staged, entities: list[str]
) -> Iterator[dg.Output]:
    for entity in entities:
        frame = tables[entity]
        yield dg.Output(
            frame,
            output_name=entity,
            metadata={
                **{Count(k).value: int(v) for k, v in staged.counts[entity].items()},
                "preview": markdown(frame[[c for c in PREVIEW_COLUMNS if c in frame]], limit=5),
            },
        )
    rejects = tables["rejected"]
    top_rules = rejects.groupby(["entity", "rule", "outcome"]).size().rename("rows").reset_index()
    # one example row per rule, so each reason is seen with a real value beside it
    examples = rejects.drop_duplicates(["entity", "rule"])[["entity", "ploomes_id", "field", "value", "rule"]]
    yield dg.Output(
        rejects,
        output_name="rejected",
        metadata={
            "rejected_records": int((rejects["outcome"] == "rejected").sum()),
            "cleared_fields": int((rejects["outcome"] == "field_cleared").sum()),
            "by_rule": markdown(top_rules.sort_values("rows", ascending=False), limit=15),
            "preview": markdown(examples, limit=15),
        },
    )
    clusters = tables["duplicate_clusters"]
    # largest first: the clusters most worth a look
    largest = clusters.sort_values("size", ascending=False)[["cluster_id", "member_ids", "rule", "score"]]
    yield dg.Output(
        clusters,
        output_name="duplicate_clusters",
        metadata={
            "merged_clusters": int((clusters["kind"] == "merged").sum()),
            "candidate_clusters": int((clusters["kind"] == "candidate").sum()),
            # a person's decisions (`<name>.decisions.csv`): kept apart, naming Ids no record has, blocked
            "decided_different": int((clusters["kind"] == "different").sum()),
            "decisions_with_missing_ids": int((clusters["kind"] == "missing").sum()),
            "same_decisions_blocked": int((clusters["kind"] == "unjoined").sum()),
            "preview": markdown(largest),
            # what `ploomes-cx review` goes through, best first; and what the decisions file did
            "open_candidates": markdown(
                clusters[clusters["kind"] == "candidate"].sort_values("score", ascending=False)[
                    ["member_ids", "rule", "score"]
                ],
                limit=15,
            ),
            "decisions": markdown(
                clusters[
                    clusters["kind"].isin(["different", "missing", "unjoined"])
                    | clusters["rule"].str.contains("decision", regex=False)
                ][["kind", "member_ids", "rule"]],
                limit=15,
            ),
        },
    )


def build_staging_assets(m: Mapping) -> list[dg.AssetsDefinition]:
    plan = Plan.of(m)
    entities = list(plan.staged)
    resource_key = plan.duckdb_resource

    @dg.multi_asset(
        name=f"{m.name}_staging",
        outs=_outs(plan, [*entities, "rejected", "duplicate_clusters"]),
        deps=[plan.raw_key(e) for e in plan.raw_assets] + [plan.live_key],
        check_specs=checks.staging_check_specs(plan, m),
        required_resource_keys={resource_key},
        retry_policy=dg.RetryPolicy(max_retries=2, delay=5),
    )
    def _staging(context: AssetExecutionContext):
        duck: DuckDBResource = getattr(context.resources, resource_key)
        with connection(duck) as con:
            try:
                staged = build_staging(con, m, context.run_id)
            except DecisionsError as exc:
                raise failure(str(exc), ErrorKind.MAPPING) from None
            with staging_mode():
                tables = _apply_contracts(staged, entities, context.run_id)
            # Still open while the IO manager writes each output: its connections then join the
            # loaded database instead of opening (and checkpointing) the file once per table.
            yield from _table_outputs(tables, staged, entities)
        yield from checks.staging_check_results(plan, m, tables, staged.counts, staged.decisions)

    return [_staging]
