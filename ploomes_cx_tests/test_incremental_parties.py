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
from ploomes_cx.staging.splice import MADE_FROM, splice_clusters, splice_table

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


def _change(
    rng: random.Random, records: dict[int, dict], orgs: list[int], merged: list[int], hour: int
) -> dict[int, dict]:
    """New versions of a few records, changed as a CRM's users change them; half of them records
    merged with another, so that some leave a cluster (and the cluster they leave must change)."""
    changed: dict[int, dict] = {}
    ids = sorted(records)
    picked = rng.sample(merged, min(3, len(merged)))
    for pid in picked + rng.sample(sorted(set(ids) - set(picked)), 6 - len(picked)):
        record, other = dict(records[pid]), records[rng.choice(ids)]
        # a merged record corrected so it leaves its cluster; the others changed at random
        how = (
            "clear" if pid in merged else rng.choice(["email", "register", "key", "company", "name", "clear"])
        )
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
        record["LastUpdateDate"] = f"2026-12-01T{hour + len(changed):02d}:00:00.000-03:00"
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


def _rows(frame: pd.DataFrame, ids: set[int], made_from: str = "ploomes_id") -> list[tuple]:
    """The rows made from `ids`, cell by cell (a column's text form depends on its other values: a
    date column whose times are all midnight prints without them), without the run that made them."""
    rows = frame[frame[made_from].isin(ids)].drop(columns=["run_id"], errors="ignore")
    return sorted(tuple(map(repr, row)) for row in rows.itertuples(index=False))


def _reached(staged: Staged, reach: set[int]) -> dict[str, list[tuple]]:
    merged = staged.clusters[staged.clusters["kind"] == "merged"]
    return {t: _rows(getattr(staged, t), reach) for t in MADE_FROM} | {
        "merged": _rows(merged, reach, "survivor_id")
    }


# B2B: clients are the organizations, a person's client is its company's (company links needed);
# B2C: clients are the persons themselves, so the reach is their identifiers and e-mails alone
SHAPES = {"b2b": ("organizations", ["email", "company"]), "b2c": ("persons", ["email"])}


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("seed", range(6))
def test_re_staging_the_reach_alone_gives_the_full_re_stages_rows_for_it(seed: int, shape: str) -> None:
    rng = random.Random(seed)
    identifiers = IDENTIFIER_ORDERS[seed % len(IDENTIFIER_ORDERS)]
    clients, links = SHAPES[shape]
    m = parse_mapping(
        {"name": "inc", "contracts": {"source": "none"}, "timeline": [], "identifiers": identifiers,
         "clients": {"source": clients}, "custom_fields": {"clients": []}},
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
        # a first round of changes makes duplicates (the sandbox's small accounts have few)
        records |= _change(rng, records, orgs, [], hour=8)
        _append(con, list(records.values()), "earlier")
        was = build_staging(con, m, "before")
        members = was.clusters.loc[was.clusters["kind"] == "merged", "member_ids"]
        merged = sorted({int(i) for ids in members for i in ids.split(",")})
        changed = _change(rng, records, orgs, merged, hour=14)
        before = _parties(con, m, set(changed))
        _append(con, list(changed.values()), "second")
        after = _parties(con, m)
        reach = neighbourhood(pd.concat([before, after]), identifiers, changed, links=links)
        con.register("_reach", pd.DataFrame({"ploomes_id": sorted(reach)}))
        full = build_staging(con, m, "after")
        alone = build_staging(con, m, "after-reach", only="_reach")
    assert len(reach) < len(records)  # a change reaches part of the account, not all of it
    assert _reached(alone, reach) == _reached(full, reach)
    # the tables before the change, with the reach's rows replaced, are the full re-stage's tables
    everything = set(records)
    for table, made_from in MADE_FROM.items():
        spliced = splice_table(getattr(was, table), getattr(alone, table), reach, made_from)
        assert _rows(spliced, everything, made_from) == _rows(getattr(full, table), everything, made_from), (
            table
        )
    clusters = splice_clusters(was.clusters, alone.clusters, reach)
    merged = clusters[clusters["kind"] == "merged"]
    assert _rows(merged, everything, "survivor_id") == _rows(
        full.clusters[full.clusters["kind"] == "merged"], everything, "survivor_id"
    )
