"""Staging layer: cleaned, deduplicated tables validated by Pandera, one per CustomerX entity.

One multi-asset per mapping computes them together from all raw windows, because they depend on
each other (a merged organization changes which client a person's contact points at). The tables
are not partitioned: each materialization recomputes the whole account, so deduplication is
global and the latest version of a record wins whichever window ran last.
"""

import dagster as dg
import pandas as pd
from dagster import AssetExecutionContext
from dagster_duckdb import DuckDBResource

from ploomes_cx.mapping import Mapping
from ploomes_cx.metadata import markdown
from ploomes_cx.plan import Plan
from ploomes_cx.staging import checks
from ploomes_cx.staging.build import Staged, build_staging
from ploomes_cx.staging.rejects import Rejects
from ploomes_cx.staging.schemas import DAGSTER_TYPES, MODELS, split_valid

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
    for entity in entities:
        frame, before = getattr(staged, entity), len(getattr(staged, entity))
        if entity != "clients":
            orphan = ~frame["client_external_id"].isin(set(tables["clients"]["external_id"]))
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
        dropped = before - len(tables[entity])
        staged.counts[entity]["staged"] -= dropped
        staged.counts[entity]["rejected"] += dropped
    rejected = (
        pd.concat([staged.rejected, rejects.frame()], ignore_index=True) if rejects.parts else staged.rejected
    )
    tables["rejected"] = MODELS["rejected"].validate(rejected.reset_index(drop=True))
    tables["duplicate_clusters"] = MODELS["duplicate_clusters"].validate(staged.clusters)
    return tables


def _preview(frame: pd.DataFrame, columns: list[str]) -> dg.MetadataValue:
    return markdown(frame[[c for c in columns if c in frame]], limit=5)


def build_staging_assets(m: Mapping) -> list[dg.AssetsDefinition]:
    plan = Plan.of(m)
    entities = list(plan.staged)
    outputs = [*entities, "rejected", "duplicate_clusters"]
    resource_key = plan.duckdb_resource
    outs = {
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
    check_specs = [
        dg.AssetCheckSpec(
            "no_duplicate_identifiers",
            asset=plan.staging_key(e),
            blocking=True,
            description="No two staged rows are the same record by the mapping's identifiers",
        )
        for e in ("clients", "contacts")
    ]
    check_specs += [
        dg.AssetCheckSpec(
            "client_exists",
            asset=plan.staging_key(e),
            blocking=True,
            description="Every row points at a staged client",
        )
        for e in entities
        if e != "clients"
    ]
    check_specs += [
        dg.AssetCheckSpec(
            "rejected_ratio",
            asset=plan.staging_key(e),
            description=f"Rejected records stay under {m.quality.max_rejected_ratio:.0%}",
        )
        for e in entities
    ]
    check_specs.append(
        dg.AssetCheckSpec(
            "fuzzy_candidates",
            asset=plan.staging_key("duplicate_clusters"),
            description="Look-alike clients for a person to review (warning only)",
        )
    )

    @dg.multi_asset(
        name=f"{m.name}_staging",
        outs=outs,
        deps=[plan.raw_key(e) for e in plan.extracts],
        check_specs=check_specs,
        required_resource_keys={resource_key},
        retry_policy=dg.RetryPolicy(max_retries=2, delay=5),
    )
    def _staging(context: AssetExecutionContext):
        duck: DuckDBResource = getattr(context.resources, resource_key)
        with duck.get_connection() as con:
            staged = build_staging(con, m, context.run_id)
        tables = _apply_contracts(staged, entities, context.run_id)
        rejects = tables["rejected"]
        for entity in entities:
            counts = staged.counts[entity]
            yield dg.Output(
                tables[entity],
                output_name=entity,
                metadata={
                    **{k: int(v) for k, v in counts.items()},
                    "preview": _preview(
                        tables[entity],
                        [
                            "external_id",
                            "name",
                            "client_external_id",
                            "email",
                            "document",
                            "title",
                            "value",
                            "kind",
                            "occurred_at",
                        ],
                    ),
                },
            )
        top_rules = rejects.groupby(["entity", "rule", "outcome"]).size().rename("rows").reset_index()
        yield dg.Output(
            rejects,
            output_name="rejected",
            metadata={
                "rejected_records": int((rejects["outcome"] == "rejected").sum()),
                "cleared_fields": int((rejects["outcome"] == "field_cleared").sum()),
                "by_rule": markdown(top_rules.sort_values("rows", ascending=False), limit=15),
                # one example row per rule, so each reason is seen with a real value beside it
                "preview": markdown(
                    rejects.drop_duplicates(["entity", "rule"])[
                        ["entity", "ploomes_id", "field", "value", "rule"]
                    ],
                    limit=15,
                ),
            },
        )
        clusters = tables["duplicate_clusters"]
        yield dg.Output(
            clusters,
            output_name="duplicate_clusters",
            metadata={
                "merged_clusters": int((clusters["kind"] == "merged").sum()),
                "candidate_clusters": int((clusters["kind"] == "candidate").sum()),
                # largest first: the clusters most worth a look
                "preview": markdown(
                    clusters.sort_values("size", ascending=False)[
                        ["cluster_id", "member_ids", "rule", "score"]
                    ]
                ),
            },
        )
        for entity in ("clients", "contacts"):
            yield checks.no_duplicate_identifiers(plan.staging_key(entity), tables[entity], m.identifiers)
        for entity in entities:
            if entity != "clients":
                yield checks.referential_integrity(
                    plan.staging_key(entity), tables[entity], tables["clients"]
                )
            yield checks.rejected_ratio(
                plan.staging_key(entity),
                staged.counts[entity],
                rejects,
                _source_entities(entity),
                m.quality.max_rejected_ratio,
            )
        yield checks.fuzzy_candidates(plan.staging_key("duplicate_clusters"), clusters)

    return [_staging]


def _source_entities(entity: str) -> set[str]:
    """Names under which rejected rows of a staging table are recorded."""
    by_table: dict[str, set[str]] = {
        "clients": {"organizations", "persons", "deal_contacts"},
        "contacts": {"persons", "organization_contacts", "deal_persons"},
        "contracts": {"won_deals", "deal_products"},
        "timeline": {"notes", "tasks", "attachments"},
    }
    return by_table[entity] | {f"stg_{entity}"}
