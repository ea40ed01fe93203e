"""Contracts whose deal left won, or was won again: cancelled or kept, reactivated.

What `contracts.on_leave_won` asks for (mapping-and-cli.md §4), one record at a time, inside the
contracts load (load/loop.py); the status is remembered in `contract_status` as each call lands.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from ploomes_cx.customerx.bodies import reactivate_body
from ploomes_cx.customerx.endpoints import RESOURCES
from ploomes_cx.load import ledger

if TYPE_CHECKING:
    from ploomes_cx.load.loop import EntityLoad, Planned


def leave_won(load: EntityLoad, item: Planned) -> tuple[str, str]:
    """A contract whose deal is no longer won: cancelled as of the day it left (one call), or
    kept and listed (`contracts.on_leave_won: keep`, no call)."""
    since = item.body.get("cancellation_date")
    deal = f"deal {item.row['ploomes_id']} is no longer won in Ploomes (since {since})"
    if load.m.contracts.on_leave_won == "keep":
        ledger.set_contract_status(load.con, load.schema, item.ext, "left_won", load.run_id)
        return "left_won", f"{deal}; kept active (contracts.on_leave_won: keep)"
    load.call("cancel_contract", body=item.body)
    ledger.set_contract_status(load.con, load.schema, item.ext, "cancelled", load.run_id)
    return "cancelled", f"{deal}; cancelled as of {since}"


def reactivate(load: EntityLoad, item: Planned, mine: ledger.Known | None) -> tuple[str, str]:
    """A deal won again: its cancelled contract is reactivated as of the sale date, then updated
    when its content changed too."""
    when = item.row.get("sale_date") or dt.datetime.now()
    load.call("reactivate_contract", body=reactivate_body(item.ext, when))
    ledger.set_contract_status(load.con, load.schema, item.ext, None, load.run_id)
    load.statuses.pop(item.ext, None)
    if mine is not None and mine.content_hash != item.digest:
        load.call(RESOURCES[load.entity].update, external_id=item.ext, body=item.body)
        load.remember(item.ext, mine.customerx_id, item.digest, item.body, "sent")
    return "reactivated", f"deal {item.row['ploomes_id']} is won again; contract reactivated"
