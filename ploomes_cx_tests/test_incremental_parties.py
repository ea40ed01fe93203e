"""Re-staging only what a change reached gives the rows a full re-stage gives (issue 30, point 1).

A small sandbox account's organizations and persons are written as raw rows and staged; then a
few records change the way dirty CRMs change (an e-mail or document copied from another record,
a person moved to another company, a renamed or re-coded record) and their new versions are
appended. The clients, contacts, rejections and merged clusters that `build_staging(only=...)`
gives for the reached records must be exactly the full re-stage's rows for those records. The
reach is `neighbourhood` over the records' values before and after the change, linked by the
mapping's identifiers, contact e-mails and company membership (docs/incremental-staging.md).
Look-alike candidates are left out here: their reach is the fuzzy-name window, tested apart.
"""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pandas as pd
import pytest

from ploomes_cx.mapping import Mapping, parse_mapping
from ploomes_cx.raw.frames import raw_frame
from ploomes_cx.sandbox import PloomesDataset
from ploomes_cx.staging.build import Staged, build_staging, staging_mode
from ploomes_cx.staging.context import Context
from ploomes_cx.staging.neighbourhood import neighbourhood
from ploomes_cx.staging.party import read_parties
from ploomes_cx.staging.rejects import Rejects

ZONE = ZoneInfo("America/Sao_Paulo")
WINDOW = dg.TimeWindow(dt.datetime(2026, 10, 1, tzinfo=ZONE), dt.datetime(2026, 12, 2, tzinfo=ZONE))
IDENTIFIER_ORDERS = (
    ["cnpj_cpf", "external_code", "email"],
    ["email", "cnpj_cpf"],
    ["external_code"],
    ["email", "external_code", "cnpj_cpf"],
)


def _append(con: duckdb.DuckDBPyConnection, records: list[dict], run_id: str) -> None:
    for entity, type_id in (("organizations", 1), ("persons", 2)):
        rows, outside = raw_frame(
            [r for r in records if r["TypeId"] == type_id], "LastUpdateDate", WINDOW, ZONE, run_id
        )
        assert not outside
        con.register("_rows", rows)
        con.execute(f"create table if not exists inc.raw_{entity} as select * from _rows limit 0")
        con.execute(f"insert into inc.raw_{entity} by name select * from _rows")
        con.unregister("_rows")


def _change(rng: random.Random, records: dict[int, dict], orgs: list[int]) -> dict[int, dict]:
    """New versions of a few records, changed as a CRM's users change them."""
    changed: dict[int, dict] = {}
    ids = sorted(records)
    for pid in rng.sample(ids, 6):
        record, other = dict(records[pid]), records[rng.choice(ids)]
        how = rng.choice(["email", "register", "key", "company", "name", "clear"])
        if how == "email":
            record["Email"] = other["Email"]
        elif how == "register" and other["TypeId"] == record["TypeId"]:
            record.update(Register=other["Register"], CNPJ=other.get("CNPJ"), CPF=other.get("CPF"))
        elif how == "key":
            record["Key"] = other["Key"]
        elif how == "company" and record["TypeId"] == 2:
            record["CompanyId"] = rng.choice(orgs)
        elif how == "clear":
            record.update(Email=None, Register="", CNPJ=None, CPF=None, Key=None)
        else:
            record["Name"] = f"{other['Name']} "  # a trailing space: the same name, cleaned
        record["LastUpdateDate"] = f"2026-12-01T{10 + len(changed):02d}:00:00.000-03:00"
        changed[pid] = record
    return changed


def _parties(con: duckdb.DuckDBPyConnection, m: Mapping, ids: set[int] | None = None) -> pd.DataFrame:
    """Every party's normalized values, with the company it belongs to (its own, for a company)."""
    with staging_mode():
        ctx = Context(con, m, Rejects("reach"), {})
        parties = read_parties(ctx, ("organizations", "persons"))
    orgs = parties.orgs.assign(company=parties.orgs["ploomes_id"])
    persons = parties.persons.assign(company=parties.persons["company_id"])
    frame = pd.concat([orgs, persons], ignore_index=True)
    frame["company"] = frame["company"].astype("Int64")
    return frame if ids is None else frame[frame["ploomes_id"].isin(ids)]


def _rows(staged: Staged, reach: set[int]) -> dict[str, list[tuple]]:
    def rows(frame: pd.DataFrame, where: pd.Series) -> list[tuple]:
        # cell by cell: a column's text form depends on its other values (a date column whose
        # times are all midnight prints without them)
        return sorted(tuple(map(repr, row)) for row in frame[where].itertuples(index=False))

    clusters = staged.clusters
    merged = clusters["kind"] == "merged"
    return {
        "clients": rows(staged.clients, staged.clients["ploomes_id"].isin(reach)),
        "contacts": rows(staged.contacts, staged.contacts["ploomes_id"].isin(reach)),
        "rejected": rows(staged.rejected, staged.rejected["ploomes_id"].isin(reach)),
        "merged": rows(clusters, merged & clusters["survivor_id"].isin(reach)),
    }


@pytest.mark.parametrize("seed", range(8))
def test_re_staging_the_reach_alone_gives_the_full_re_stages_rows_for_it(seed: int) -> None:
    rng = random.Random(seed)
    identifiers = IDENTIFIER_ORDERS[seed % len(IDENTIFIER_ORDERS)]
    m = parse_mapping(
        {"name": "inc", "contracts": {"source": "none"}, "timeline": [], "identifiers": identifiers,
         "custom_fields": {"clients": []}},
        "test_incremental_parties.py",
    )  # fmt: skip
    dataset = PloomesDataset(persons=60, seed=seed)
    records = {
        r["Id"]: r for r in (dataset.render("contacts", i) for i in range(len(dataset.tables["contacts"])))
    }
    orgs = [pid for pid, r in records.items() if r["TypeId"] == 1]
    with duckdb.connect() as con:
        con.execute("create schema inc")
        _append(con, list(records.values()), "first")
        changed = _change(rng, records, orgs)
        before = _parties(con, m, set(changed))
        _append(con, list(changed.values()), "second")
        after = _parties(con, m)
        reach = neighbourhood(pd.concat([before, after]), identifiers, changed, links=["email", "company"])
        con.register("_reach", pd.DataFrame({"ploomes_id": sorted(reach)}))
        full = build_staging(con, m, "r")
        alone = build_staging(con, m, "r", only="_reach")
    assert len(reach) < len(records)  # a change reaches part of the account, not all of it
    assert _rows(alone, reach) == _rows(full, reach)
