"""The look-alike check says, in the UI and in the CLI alike, that look-alikes are candidates for
review (`ploomes-cx review NAME`), not errors, and that its WARN severity blocks nothing."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pandas as pd

from ploomes_cx.mapping import parse_mapping
from ploomes_cx.plan import Plan
from ploomes_cx.staging.checks import fuzzy_candidates, staging_check_specs
from ploomes_cx.summary import summarize

CLUSTERS = pd.DataFrame(
    {
        "kind": ["candidate", "candidate", "merged"],
        "member_ids": ["1,2", "3,4", "5,6"],
        "rule": ["fuzzy_name", "fuzzy_name", "document"],
        "score": [0.93, 0.91, 1.0],
    }
)


M = parse_mapping({"name": "acme", "contracts": {"source": "won_deals"}}, "test.yaml")


def test_the_check_description_the_ui_shows_explains_the_yellow_failed() -> None:
    (spec,) = [s for s in staging_check_specs(Plan.of(M), M) if s.name == "fuzzy_candidates"]
    text = spec.description or ""
    assert "ploomes-cx review acme" in text
    assert "not errors" in text and "WARN" in text
    assert (
        "shown as a failed warning-severity check while look-alikes wait for review; it blocks nothing"
        in text
    )


def test_the_result_says_how_many_wait_and_what_to_run() -> None:
    result = fuzzy_candidates(dg.AssetKey(["acme", "duplicate_clusters"]), CLUSTERS, "acme")
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert "2 look-alike(s) to review with `ploomes-cx review acme`" in (result.description or "")
    assert result.metadata["review_with"].value == "ploomes-cx review acme"
    assert "blocks nothing" in str(result.metadata["what_this_means"].value)


def test_the_cli_line_names_the_look_alikes_to_review() -> None:
    key = dg.AssetKey(["acme", "duplicate_clusters"])

    @dg.asset(key=key, check_specs=[dg.AssetCheckSpec("fuzzy_candidates", asset=key)])
    def clusters() -> Iterator[dg.Output | dg.AssetCheckResult]:
        yield dg.Output(None)
        yield fuzzy_candidates(key, CLUSTERS, "acme")

    result = dg.materialize([clusters])
    assert result.success  # WARN: the run goes on
    (line,) = summarize(Plan.of(M), "w", result, 1.0).checks
    assert line.startswith("acme/duplicate_clusters fuzzy_candidates: warning (2 look-alikes to review")
    assert "`ploomes-cx review acme`" in line and "not errors" in line
