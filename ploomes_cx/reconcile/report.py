"""What a reconcile found and did, as the tables the UI shows and the lines the CLI prints."""

from __future__ import annotations

from collections import Counter

import pandas as pd

from ploomes_cx.reconcile.decide import Decision
from ploomes_cx.reconcile.listing import Listing


def findings_frame(d: Decision) -> pd.DataFrame:
    rows = [
        {
            "entity": entity,
            "held": f.held,
            "gone_in_ploomes": f.gone,
            "newly_gone": f.newly_gone,
            "to_remove": f.removed,
            "unknown_origin": f.unknown_origin,
        }
        for entity, f in d.findings.items()
    ]
    columns = ["entity", "held", "gone_in_ploomes", "newly_gone", "to_remove", "unknown_origin"]
    return pd.DataFrame(rows, columns=columns)


def cost_frame(listing: Listing) -> pd.DataFrame:
    rows = [
        {
            "ploomes_set": s.path,
            "ids": len(s.ids),
            "requests": s.requests,
            "ids_per_request": round(s.ids_per_request, 1),
            "seconds": round(s.seconds, 2),
        }
        for s in listing.sets.values()
    ]
    return pd.DataFrame(rows, columns=["ploomes_set", "ids", "requests", "ids_per_request", "seconds"])


def actions_frame(d: Decision) -> pd.DataFrame:
    rows = [
        {"entity": a.entity, "external_id": a.external_id, "action": a.op, "date": str(a.when), "why": a.why}
        for a in d.actions
    ]
    return pd.DataFrame(rows, columns=["entity", "external_id", "action", "date", "why"])


def lines(d: Decision, listing: Listing, outcomes: Counter | None) -> list[str]:
    """The CLI's report: the listing's cost, per entity what is gone and what happens to it."""
    out = [
        f"listed {sum(len(s.ids) for s in listing.sets.values())} Ploomes Ids in {listing.requests} requests, "
        f"{listing.seconds:.1f}s:"
    ]
    for row in cost_frame(listing).itertuples(index=False):
        out.append(
            f"  {row.ploomes_set:<26} {row.ids:>8} ids {row.requests:>5} requests "
            f"({row.ids_per_request:g} ids/request) {row.seconds:>7.1f}s"
        )
    out.append(f"deletes.policy: {d.policy}")
    for row in findings_frame(d).itertuples(index=False):
        out.append(
            f"  {row.entity:<10} {row.held:>6} held, {row.gone_in_ploomes:>5} gone in Ploomes "
            f"({row.newly_gone} newly found), {row.to_remove:>5} to remove"
        )
    if outcomes is None:
        head = (
            f"dry run: {len(d.actions)} call(s) would be made"
            if d.actions
            else "dry run: nothing would change"
        )
        out.append(
            head + "".join(f"\n  would {a.op} {a.entity} {a.external_id}: {a.why}" for a in d.actions[:20])
        )
    else:
        done = ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items())) or "nothing to do"
        out.append(f"done: {done}")
    return out
