"""Staged timeline: notes, activities (tasks) and attachments at their original date, each on the
client of its contact, or of its deal's contact."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pandas as pd

from ploomes_cx.ploomes import payloads
from ploomes_cx.ploomes.dates import local_parser
from ploomes_cx.staging.clients import ClientResolver
from ploomes_cx.staging.context import Context
from ploomes_cx.staging.party import Parties
from ploomes_cx.staging.tables import TIMELINE_COLUMNS, counts, shape


def stage_timeline(
    ctx: Context, parties: Parties, client_of: ClientResolver
) -> tuple[pd.DataFrame, dict[str, int]]:
    m, deals = ctx.m, parties.deals
    deal_contact = (
        dict(zip(deals["ploomes_id"], deals["contact_id"], strict=True)) if deals is not None else {}
    )
    occurred = local_parser(ZoneInfo(m.ploomes.naive_datetime_timezone), ZoneInfo(m.sync.timezone))
    frames, extracted = [], 0
    for kind in m.timeline:
        source = payloads.TIMELINE_SOURCES[kind]
        frame = payloads.timeline(ctx.con, ctx.view(source.entity), source)
        extracted += len(frame)
        contact = frame["contact_id"].fillna(frame["deal_id"].map(deal_contact)).astype("Int64")
        frame["client_external_id"] = client_of(contact)
        frame["occurred_at"] = frame["occurred_raw"].map(occurred).fillna(frame["changed_at"])
        frame["kind"] = source.prefix
        frame["external_id"] = source.prefix + "-" + frame["ploomes_id"].astype(str)
        orphan = frame["client_external_id"].isna()
        rule = ctx.orphan_rule(contact).where(
            ~frame["deal_id"].isin(ctx.missing.get("deals", set())), "parent_deleted"
        )
        ctx.rejects.add(source.entity, frame, orphan, "client", contact, rule)
        frames.append(frame[~orphan])
    staged = shape(pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(), TIMELINE_COLUMNS)
    return staged, counts(extracted, len(staged))
