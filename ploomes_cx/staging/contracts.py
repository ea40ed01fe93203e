"""Staged contracts: one per won deal (`won_deals`), or one per product line of a won deal's
orders, or of its last quote when it has no order (`deal_products`); each on a staged client.

A contract CustomerX holds from us whose deal is no longer won (lost, reopened) stays in the table
with status `left_won` and the date it left, so the load applies `contracts.on_leave_won` (§4.2).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pandas as pd

from ploomes_cx.ploomes import payloads
from ploomes_cx.ploomes.dates import local_parser
from ploomes_cx.runtime.duckdb_io import table_exists
from ploomes_cx.staging.clients import ClientResolver
from ploomes_cx.staging.context import Context
from ploomes_cx.staging.party import Parties
from ploomes_cx.staging.tables import CONTRACT_COLUMNS, counts, shape


def stage_contracts(
    ctx: Context, parties: Parties, client_of: ClientResolver
) -> tuple[pd.DataFrame, dict[str, int]]:
    m = ctx.m
    if m.contracts.source == "none" or parties.deals is None:
        return shape(pd.DataFrame(), CONTRACT_COLUMNS), counts(0, 0)
    won = parties.won_deals().copy()
    won["client_external_id"] = client_of(won["contact_id"])
    sale_day = local_parser(
        ZoneInfo(m.ploomes.naive_datetime_timezone), ZoneInfo(m.sync.timezone), date_only=True
    )
    won["sale_date"] = won["finish_date"].map(sale_day)
    attrs = ctx.custom_attributes(parties.deals_view, "contracts", "deals")
    won["custom_attributes"] = won["ploomes_id"].map(attrs).fillna("{}") if len(attrs) else "{}"
    if m.contracts.source == "won_deals":
        frame = won.assign(
            external_id=won["ploomes_id"].astype(str),
            value=won["amount"],
            product_name=None,
            product_code=None,
        )
        entity = "won_deals"
    else:
        frame, entity = _product_lines(ctx, won), "deal_products"
    frame = pd.concat([frame.assign(status="active"), _left_won(ctx, parties, client_of)], ignore_index=True)
    extracted = len(frame)
    orphan = frame["client_external_id"].isna()
    # an Id, whatever else the column holds: a missing one must not turn 1023 into "1023.0"
    deal_contact = (
        frame["ploomes_id"].map(dict(zip(won["ploomes_id"], won["contact_id"], strict=True))).astype("Int64")
    )
    rule = ctx.orphan_rule(deal_contact)
    ctx.rejects.add(entity, frame, orphan, "client", deal_contact, rule)
    staged = shape(frame[~orphan], CONTRACT_COLUMNS)
    return staged, counts(extracted, len(staged))


def _left_won(ctx: Context, parties: Parties, client_of: ClientResolver) -> pd.DataFrame:
    """Contracts CustomerX holds from us (the crosswalk) whose deal's latest version is not won."""
    if parties.deals is None or not table_exists(ctx.con, ctx.m.name, "crosswalk"):
        return pd.DataFrame()
    held = ctx.con.execute(
        f"""select external_id, body::json->>'external_id_client' as held_client,
                   (body::json->>'contract_value')::double as value, body::json->>'description' as title
            from {ctx.m.name}.crosswalk where entity = 'contracts' and state = 'sent'"""
    ).fetchdf()
    held["ploomes_id"] = held["external_id"].str.split("-").str[0].astype("int64")
    deals = parties.deals.set_index("ploomes_id")
    gone = deals[deals["status_id"] != payloads.WON]
    held = held[held["ploomes_id"].isin(gone.index)].reset_index(drop=True)
    deal = gone.loc[held["ploomes_id"]].reset_index()
    client = client_of(deal["contact_id"]).fillna(held["held_client"])
    return held.assign(
        client_external_id=client,
        custom_attributes="{}",
        changed_at=deal["changed_at"],
        window_start=deal["window_start"],
        status="left_won",
        status_changed_at=pd.to_datetime(deal["changed_at"]).dt.normalize(),
    ).drop(columns=["held_client"])


def _product_lines(ctx: Context, won: pd.DataFrame) -> pd.DataFrame:
    """Lines of the deal's orders, or, for a won deal with no order, of its last quote."""
    orders = payloads.product_lines(ctx.con, ctx.view("orders"), "order")
    quotes = payloads.product_lines(ctx.con, ctx.view("quotes"), "quote")
    with_order = set(orders["deal_id"])
    last_quote = dict(zip(won["ploomes_id"], won["last_quote_id"], strict=True))
    quotes = quotes[
        ~quotes["deal_id"].isin(with_order) & (quotes["parent_id"] == quotes["deal_id"].map(last_quote))
    ]
    chosen = pd.concat([orders, quotes], ignore_index=True)
    chosen = chosen[chosen["deal_id"].isin(set(won["ploomes_id"]))]
    deal_info = won.set_index("ploomes_id")
    chosen["external_id"] = (
        chosen["deal_id"].astype(str) + "-" + chosen["kind"] + "-" + chosen["line_id"].astype(str)
    )
    chosen["ploomes_id"] = chosen["deal_id"]
    for col in ("client_external_id", "title", "sale_date", "custom_attributes"):
        chosen[col] = chosen["deal_id"].map(deal_info[col])
    return chosen
