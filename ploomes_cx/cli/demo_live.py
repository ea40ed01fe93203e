"""`ploomes-cx demo --live`: after the demo's sync, `listen` on a free port, the webhooks
registered on the sandbox, and one deal won there, shown arriving in CustomerX as a contract."""

from __future__ import annotations

import os
import secrets
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ploomes_cx.live.process import ListenProcess
    from ploomes_cx.mapping import Mapping
    from ploomes_cx.sandbox import CustomerXSandbox, PloomesSandbox


def _open_deal(m: Mapping) -> int | None:
    """An open deal whose client CustomerX holds: winning it makes a contract."""
    from ploomes_cx.runtime.duckdb_io import database_path, read_only
    from ploomes_cx.runtime.state import home

    with read_only(database_path(home(), m.name)) as con:
        rows = con.execute(
            f"""select d.id from {m.name}.raw_deals d where (d.payload->>'$.StatusId')::int = 1
                and (d.payload->>'$.ContactId') in (select external_id from {m.name}.stg_clients)
                order by d.id limit 1"""
        ).fetchall()
    return int(rows[0][0]) if rows else None


def show_live(
    m: Mapping, ploomes: PloomesSandbox, customerx: CustomerXSandbox, staying: bool = True
) -> ListenProcess | None:
    """Start `listen`, register the webhooks, win a deal; the listener is left running (None when
    the demo's windows hold no open deal to win). `staying`: the sandboxes stay up after this (the
    UI runs), so another change can be tried; without it none is suggested, they are about to stop."""
    from ploomes_cx.connect.account import ploomes_api
    from ploomes_cx.live.process import ListenProcess, wait_for
    from ploomes_cx.ploomes.webhooks import register

    os.environ.setdefault(m.webhooks.validation_key_env, secrets.token_hex(16))
    listener = ListenProcess(m.source_path).start()
    with ploomes_api(m) as api:
        done = register(m, api, listener.url, os.environ[m.webhooks.validation_key_env])
    print(f"\nlive: `ploomes-cx listen {m.name}` at {listener.url}; {len(done.created)} webhooks registered")
    deal = _open_deal(m)
    if deal is None:
        print("live: the synced windows hold no open deal to win; change records with the touch endpoint")
        return listener
    contracts = customerx.store.records["contracts"]
    started = time.monotonic()
    ploomes.touch("deals", deal, {"StatusId": 2})
    print(f"live: deal {deal} won in the Ploomes sandbox at {time.strftime('%H:%M:%S')}", flush=True)
    wait_for(
        lambda: any(c["external_id_contract"] == str(deal) for c in contracts.values()), 120, "the contract"
    )
    print(
        f"live: contract {deal} created in CustomerX {time.monotonic() - started:.1f} s later, by a run of job "
        f"{m.name}_live (Runs tab; its events are in the metadata of {m.name}/raw_live)",
        flush=True,
    )
    if staying:
        print(
            f"live: try another change: curl -X POST {ploomes.url}/_sandbox/touch "
            f'-d \'{{"entity": "contacts", "id": 1000, "changes": {{"Name": "Novo Nome Ltda"}}}}\'',
            flush=True,
        )
    else:
        print(
            "live: the sandboxes stop now (--no-ui); without --no-ui they stay up with the UI for more changes"
        )
    return listener
