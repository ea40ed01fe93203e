"""The run summary reads steps by the plan's roles and adds windows up by each count's meaning."""

import dagster as dg

from ploomes_cx.mapping import parse_mapping
from ploomes_cx.metadata import Count
from ploomes_cx.plan import Plan
from ploomes_cx.summary import SyncTotals, WindowSummary


def _plan(name: str) -> Plan:
    return Plan.of(parse_mapping({"name": name, "contracts": {"source": "won_deals"}}, "test.yaml"))


def test_every_asset_of_a_plan_has_its_role_and_no_other_does() -> None:
    plan = _plan("acme_raw_load")
    assert plan.role(plan.raw_key("persons")) == ("raw", "persons")
    assert plan.role(plan.staging_key("contracts")) == ("staging", "contracts")
    assert plan.role(plan.load_key("clients")) == ("load", "clients")
    assert plan.role(dg.AssetKey(["other", "load_clients"])) is None


def test_totals_add_what_windows_did_and_keep_what_the_account_holds() -> None:
    totals = SyncTotals(_plan("acme"))
    for n, (records, staged, created, unchanged) in enumerate([(10, 8, 8, 0), (5, 11, 3, 8)]):
        window = WindowSummary(key=f"w{n}", success=True, seconds=1.0, run_id=str(n))
        window.raw_entities.add("persons")
        window.counts["persons"] = {Count.EXTRACTED: records}
        window.counts["clients"] = {Count.STAGED: staged, Count.CREATED: created, Count.UNCHANGED: unchanged}
        totals.add(window)
    assert totals.rows["persons"][Count.EXTRACTED] == 15
    assert totals.rows["clients"] == {Count.STAGED: 11, Count.CREATED: 11, Count.UNCHANGED: 8}
    header, *rows = totals.lines()
    assert header.split() == ["entity", *[c.value for c in Count]]
    assert [r.split()[0] for r in rows] == ["persons", "clients"]  # raw extracts first
