"""Staging layer: cleaned, deduplicated tables validated by Pandera, one per CustomerX entity.

One multi-asset per mapping computes them together from all raw windows, because they depend on
each other (a merged organization changes which client a person's contact points at). The tables
are not partitioned: deduplication is global and the latest version of a record wins whichever
window ran last. A materialization recomputes the whole account, or only the records a change
since the last one reaches (`stage.py`, docs/incremental-staging.md).
"""

import contextlib
from collections.abc import Iterator

import dagster as dg
import duckdb
import pandas as pd
from dagster import AssetExecutionContext
from dagster_duckdb import DuckDBResource
from pydantic import Field

from ploomes_cx.decisions import DecisionsError
from ploomes_cx.mapping import Mapping
from ploomes_cx.metadata import STAGING_PATH, Count, ErrorKind, failure, markdown
from ploomes_cx.plan import Plan
from ploomes_cx.runtime.duckdb_io import connection
from ploomes_cx.staging import checks
from ploomes_cx.staging.build import Staged
from ploomes_cx.staging.schemas import DAGSTER_TYPES
from ploomes_cx.staging.stage import FULL_RESTAGE_ENV, finish, stage


class StagingConfig(dg.Config):
    full_restage: bool = Field(
        default=False,
        description="Stage every record even when only a few records changed "
        f"since the last staging (${FULL_RESTAGE_ENV} asks it of every run).",
    )


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
    tables: dict[str, pd.DataFrame], staged: Staged, entities: list[str], how: str
) -> Iterator[dg.Output]:
    for entity in entities:
        frame = tables[entity]
        yield dg.Output(
            frame,
            output_name=entity,
            metadata={
                **{Count(k).value: int(v) for k, v in staged.counts[entity].items()},
                STAGING_PATH: how,
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


@contextlib.contextmanager
def _settings_reset(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """The database may stay open for the next step (`runtime/duckdb_keep.py`): staging's own
    memory limit and insertion order (`build.py`) are not that step's, however staging ends."""
    try:
        yield
    finally:
        with contextlib.suppress(duckdb.Error):  # never in place of the error that ended it
            con.execute("reset memory_limit")
            con.execute("reset preserve_insertion_order")


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
    def _staging(context: AssetExecutionContext, config: StagingConfig):
        duck: DuckDBResource = getattr(context.resources, resource_key)
        with connection(duck) as con, _settings_reset(con):
            try:
                staging = stage(con, m, context.run_id, config.full_restage)
            except DecisionsError as exc:
                raise failure(str(exc), ErrorKind.MAPPING) from None
            context.log.info(f"staging {staging.summary}")
            # Still open while the IO manager writes each output: its connections then join the
            # loaded database instead of opening (and checkpointing) the file once per table.
            yield from _table_outputs(staging.tables, staging.staged, entities, staging.summary)
            finish(con, m, staging)
        yield from checks.staging_check_results(
            plan, m, staging.tables, staging.staged.counts, staging.staged.decisions
        )

    return [_staging]
