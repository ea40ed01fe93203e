"""bench-layouts' stand-in definitions keep the product's shape, so its figures stay Dagster's cost
of *our* layout: the same assets, checks, jobs and schedules per mapping as a real mapping builds."""

from __future__ import annotations

import dagster as dg

from benchmarks.layout_toy import build
from ploomes_cx.factory import build_integration_defs
from ploomes_cx.mapping import load_mapping
from ploomes_cx.mappings_folder import BUILT_IN_DIR


def _shape(defs: dg.Definitions) -> tuple[int, int, int, int]:
    repo = defs.get_repository_def()
    jobs = [j for j in repo.get_all_jobs() if not j.name.startswith("__")]
    return (
        len(repo.asset_graph.get_all_asset_keys()),
        len(repo.asset_graph.asset_check_keys),
        len(jobs),
        len(repo.schedule_defs),
    )


def test_one_stand_in_mapping_has_the_shape_of_the_sandbox_mapping() -> None:
    real = build_integration_defs(load_mapping(BUILT_IN_DIR / "sandbox.yaml"))
    assert _shape(build("per_mapping", 1)) == _shape(real)


def test_the_shared_layout_does_not_grow_with_the_mappings_and_shards_hold_their_share() -> None:
    one, many = _shape(build("shared", 1)), _shape(build("shared", 30))
    assert one[:3] == many[:3]  # assets, checks, jobs: one set for every mapping
    assert many[3] - one[3] == 29  # a schedule per mapping
    assert _shape(build("sharded", 30, shard=1, shard_size=20))[0] == 10 * _shape(build("per_mapping", 1))[0]
