"""Many accounts at once on a real instance (issue 14, part 6), small: three mappings, each with its
own sandbox account and credentials, synced together through the run queue and the daemon of a
Dagster instance on PostgreSQL (deploy/dagster.yaml). End states only; `make bench-scale` times it."""

from __future__ import annotations

import duckdb
import pytest

from benchmarks.scale import run_scale
from ploomes_cx.runtime.duckdb_io import database_path

# mostly waiting (pacing, daemons, subprocesses): one worker runs these in turn (conftest.py)
pytestmark = pytest.mark.xdist_group("waits")


def test_three_mappings_sync_at_once_through_the_queue_on_a_postgresql_instance(tmp_path):
    result = run_scale(mappings=3, windows=2, persons=80, speedup=40, folder=tmp_path, timeout=600)
    assert result.stored_runs == 3  # one run per mapping (its two windows in one pass), in PostgreSQL
    for account in result.accounts:
        assert [r["status"] for r in account.runs] == ["SUCCESS"], account.name
        with duckdb.connect(str(database_path(result.home, account.name)), read_only=True) as con:
            staged = sorted(
                r[0] for r in con.execute(f"select external_id from {account.name}.stg_clients").fetchall()
            )
        held = sorted(c["external_id_client"] for c in account.customerx.store.records["clients"].values())
        assert held == staged and staged, account.name  # each account received its own clients, all of them
        # each mapping spoke to its own servers with its own credentials (another key is a 401)
        assert account.ploomes.requests and account.customerx.writes
