"""What a reconcile's Ploomes listing costs, against the rate-limit ceiling.

Starts the sandbox Ploomes server with its rate limit enforced, lists the Ids of `/Contacts`,
`/Deals` and the timeline sets plus `Deals/GetDeletedDeals` through the real client over HTTP,
exactly as the `reconcile` asset does, and prints per set the Ids, requests, Ids per request and
seconds, the achieved request rate as a ratio of the ceiling, and what an account of a million
records would take at that rate. Run: `make bench-reconcile`.
"""

from __future__ import annotations

import argparse
import time

from ploomes_cx.mapping import Mapping
from ploomes_cx.ploomes.client import PloomesApi
from ploomes_cx.reconcile.listing import list_ploomes
from ploomes_cx.reconcile.origins import sets_for
from ploomes_cx.sandbox import PloomesDataset, PloomesSandbox


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument(
        "--rpm", type=float, default=120, help="limit the server enforces and the client paces to"
    )
    parser.add_argument("--deleted", type=int, default=50, help="deals deleted before the listing")
    args = parser.parse_args()

    dataset = PloomesDataset(persons=args.persons)
    for deal_id in dataset.tables["deals"].cols["Id"][: args.deleted]:
        dataset.delete("deals", int(deal_id))
    m = Mapping.model_validate({"name": "bench", "sync": {"start": "2026-01-01"}})
    sets = sets_for(m, {"clients", "contacts", "contracts", "timeline"})
    with PloomesSandbox(dataset, requests_per_minute=args.rpm) as server:
        api = PloomesApi(server.url, server.user_key, requests_per_minute=args.rpm, page_size=300)
        t0 = time.perf_counter()
        listing = list_ploomes(api, m, sets)
        seconds = time.perf_counter() - t0
        server_429 = server.rate_limited
    ids = sum(len(s.ids) for s in listing.sets.values())
    print(f"{args.persons:,} persons generated; ceiling {args.rpm:g} requests/min, 300 Ids per page")
    for s in listing.sets.values():
        print(
            f"  {s.path:<24} {len(s.ids):>9,} ids {s.requests:>6} requests "
            f"{s.ids_per_request:>6.1f} ids/request {s.seconds:>7.1f}s"
        )
    rate = listing.requests / seconds * 60
    per_million = 1_000_000 / (ids / listing.requests) / rate
    print(
        f"total: {ids:,} ids in {listing.requests} requests, {seconds:.1f}s = {rate:.1f} requests/min, "
        f"{rate / args.rpm:.2f} of the ceiling; {server_429} answered 429"
    )
    print(f"deleted deals found: {len(listing.deleted_deals)} of {args.deleted}")
    print(f"at this rate a listing of 1,000,000 Ids takes {per_million:.1f} min")


if __name__ == "__main__":
    main()
