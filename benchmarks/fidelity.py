"""Fidelity of a full sync of a dirty account: custom fields, adoption across documents, refusals.

Syncs several windows of a ~1,000-contact sandbox account (every custom field type mapped on
clients and contracts) through Dagster into a CustomerX sandbox that already holds a few
companies created by hand (same CNPJ, no external id) and refuses a few contacts with 422. Then
reads both APIs over HTTP and prints:
- custom fields: attributes in CustomerX that differ from their Ploomes value (target 0);
- adoptions across documents: CustomerX clients written with two different CNPJ/CPF (target 0);
- 422 answers per refused record per `sync` command (target <= 1.00);
- hand-made clients adopted by numeric id, and every refused write by status.
Run: `make bench-fidelity`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import textwrap
from collections import Counter
from pathlib import Path

import duckdb
import httpx

from ploomes_cx.cli import main as cli
from ploomes_cx.runtime.duckdb_io import database_path
from ploomes_cx.sandbox import CustomerXSandbox, PloomesDataset, PloomesSandbox
from ploomes_cx.sandbox.brazil import cnpj_digits
from ploomes_cx.sandbox.ploomes_fields import CUSTOM_FIELDS
from ploomes_cx_tests.spec import expected_text

CONTACT = {f["Key"]: f"c_{n}" for n, f in enumerate(CUSTOM_FIELDS) if f["EntityId"] == 1}
DEAL = {f["Key"]: f"d_{n}" for n, f in enumerate(CUSTOM_FIELDS) if f["EntityId"] == 2}


def mapping_file(folder: Path) -> Path:
    def block(entity: str, fields: dict[str, str]) -> str:
        return f"  {entity}:\n" + "".join(
            f"    - ploomes: {k}\n      customerx: {v}\n" for k, v in fields.items()
        )

    path = folder / "fidelity.yaml"
    path.write_text(
        textwrap.dedent("""\
        name: fidelity
        ploomes:
          requests_per_minute: 6000
        customerx:
          requests_per_minute: 6000
        sync:
          start: "2026-11-01"
        quality:
          max_rejected_ratio: 1
        custom_fields:
        """)
        + block("clients", CONTACT)
        + block("contracts", DEAL)
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--persons", type=int, default=800, help="persons in the account (orgs: a quarter)")
    parser.add_argument("--windows", default="2026-11-01..2026-11-14")
    parser.add_argument(
        "--hand-made", type=int, default=15, help="clients already in CustomerX, no external id"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["PLOOMES_CX_HOME"] = str(folder / "state")
        os.environ.pop("DAGSTER_HOME", None)
        path = str(mapping_file(folder))
        dataset = PloomesDataset(persons=args.persons, seed=23)
        with (
            PloomesSandbox(dataset, requests_per_minute=60_000, burst=1000) as ploomes,
            CustomerXSandbox(requests_per_minute=60_000, burst=1000) as cx,
            httpx.Client(base_url=ploomes.url, headers={"User-Key": ploomes.user_key}) as pl,
        ):
            os.environ.update(
                {
                    "PLOOMES_BASE_URL": ploomes.url,
                    "PLOOMES_USER_KEY": ploomes.user_key,
                    "CUSTOMERX_BASE_URL": cx.url,
                    "CUSTOMERX_TOKEN": cx.token,
                }
            )
            # companies someone created by hand in CustomerX: same CNPJ, no external id
            orgs = pl.get("/Contacts", params={"$filter": "TypeId eq 1", "$top": "300"}).json()["value"]
            digits = [(o["Id"], "".join(c for c in o["Register"] or "" if c.isdigit())) for o in orgs]
            valid = [(i, d) for i, d in digits if len(d) == 14 and cnpj_digits(d[:12]) == d]
            hand_made = valid[: args.hand_made]
            for n, (_, document) in enumerate(hand_made, start=1):
                cx.store.records["clients"][n] = {
                    "id": n,
                    "company_name": f"Manual {n}",
                    "cnpj_cpf": document,
                }
            cx.store.next_id = len(hand_made) + 1
            refused_emails = {
                p["Email"].lower()
                for p in pl.get("/Contacts", params={"$filter": "TypeId eq 2", "$top": "40"}).json()["value"]
                if p.get("Email") and "@" in p["Email"]
            }
            refused_emails = set(sorted(refused_emails)[:5])
            cx.refuse("contacts", lambda b: str(b.get("email")) in refused_emails, {"name": ["is invalid"]})
            codes, bounds = [], [0]
            for _ in range(3):
                codes.append(cli(["sync", path, "--window", args.windows]))
                bounds.append(len(cx.writes))

            clients = list(cx.store.records["clients"].values())
            contracts = list(cx.store.records["contracts"].values())
            wrong = checked = 0
            for records, entity_set, fields, ext_key in (
                (clients, "Contacts", CONTACT, "external_id_client"),
                (contracts, "Deals", DEAL, "external_id_contract"),
            ):
                for record in records:
                    if not record.get(ext_key):
                        continue  # a hand-made client nobody of ours matched: not ours to check
                    rid = int(str(record[ext_key]).split("-")[0])
                    item = pl.get(f"/{entity_set}({rid})", params={"$expand": "OtherProperties"}).json()[
                        "value"
                    ][0]
                    want = {
                        fields[i["FieldKey"]]: expected_text(i)
                        for i in item["OtherProperties"]
                        if i["FieldKey"] in fields and expected_text(i) is not None
                    }
                    held = {
                        a["name"]: a["value"]
                        for a in record.get("custom_attributes") or []
                        if a["value"] not in (None, "")  # emptied: sent as "" (§8.6)
                    }
                    checked += len(want)
                    wrong += held != want
            documents: dict[str, set[str]] = {}
            for w in cx.successful_writes():
                if w["path"].startswith("/api/v1/clients") and (w["body"] or {}).get("cnpj_cpf"):
                    key = w["body"].get("external_id_client") or w["path"]
                    documents.setdefault(key, set()).add(w["body"]["cnpj_cpf"])
            crossed = sum(len(d) > 1 for d in documents.values())
            refusals = [w for w in cx.writes if w["status"] == 422]
            per_record = Counter((w["body"] or {}).get("external_id_contact") for w in refusals)
            per_sync = Counter(
                (n, (w["body"] or {}).get("external_id_contact"))
                for n in range(3)
                for w in cx.writes[bounds[n] : bounds[n + 1]]
                if w["status"] == 422
            )
            adopted_by_id = sum(
                1
                for n in range(1, len(hand_made) + 1)
                if cx.store.records["clients"][n].get("external_id_client")
            )
            print(
                f"account              {len(dataset.tables['contacts'])} contacts, {len(dataset.tables['deals'])} deals"
            )
            print(f"sync commands        3 x {args.windows}, exit codes {codes}")
            print(
                f"CustomerX holds      {len(clients)} clients, {len(cx.store.records['contacts'])} contacts, {len(contracts)} contracts, {len(cx.store.records['timelines'])} timeline entries"
            )
            print(
                f"custom fields        {checked} values checked, {wrong} records differing from Ploomes  (target 0)"
            )
            print(f"cross-document       {crossed} clients written with two documents  (target 0)")
            with duckdb.connect(str(database_path(folder / "state", "fidelity")), read_only=True) as con:
                ids = [i for i, _ in hand_made]
                rejected = con.execute(
                    "select count(distinct ploomes_id) from fidelity.rejected where outcome = 'rejected' "
                    f"and ploomes_id in ({','.join(map(str, ids))})"
                ).fetchall()[0][0]
            print(
                f"hand-made clients    {adopted_by_id}/{len(hand_made)} adopted by numeric id; "
                f"{rejected} of them match a Ploomes record rejected in staging (e.g. no name)"
            )
            print(
                f"422 answers          {len(refusals)} for {len(per_record)} refused records over 3 syncs: "
                f"{len(refusals) / max(1, len(per_record)) / 3:.2f} per record per sync, at most "
                f"{max(per_sync.values(), default=0)} for one record in one sync  (target <= 1)"
            )
            print(
                f"refused writes       {dict(Counter(w['status'] for w in cx.writes if w['status'] >= 400))}"
            )
            with duckdb.connect(str(database_path(folder / "state", "fidelity")), read_only=True) as con:
                rows = con.execute(
                    "select entity, outcome, coalesce(http_status, 0), left(detail, 80), count(*) "
                    "from fidelity.ledger where outcome not in ('created', 'updated', 'unchanged') "
                    "group by all order by 5 desc limit 12"
                ).fetchall()
            print("ledger rows other than created/updated/unchanged, over the 3 syncs:")
            for entity, outcome, status, detail, n in rows:
                print(f"  {n:>5}  {entity:<9} {outcome:<19} {status or '':<4} {detail}")


if __name__ == "__main__":
    main()
