"""The clients a previous staging stored, for a re-stage of what a change reached
(docs/incremental-staging.md): a child (deal, note, task, attachment) re-staged because it changed
may point at a contact the change did not reach. That contact's cluster, and its company's, did
not change (a company and its persons are reached together), so its client is the one stored in
`stg_clients`, found by survivor or alias, directly or through the company."""

from __future__ import annotations

import duckdb

from ploomes_cx.staging.tables import latest


def stored_clients(
    con: duckdb.DuckDBPyConnection,
    schema: str,
    stored: str,
    ids: list[int],
    via_company: bool,
    read: tuple[str, ...] = ("organizations", "persons"),
) -> dict[int, int]:
    """Contact Id -> the survivor Id of its stored client (the contact's own, else, with
    `via_company`, its company's), for the `ids` that have one. Companies are looked up among the
    parties the staging reads (`read`): a person held in the raw tables of a mapping that does
    not read persons has no company for a full staging either."""
    if not ids:
        return {}
    # the companies of the wanted contacts only: a million contacts' payloads are not parsed for a few
    companies = " union all ".join(
        f"select id, try_cast(payload->>'$.CompanyId' as bigint) as company_id from {latest(con, schema, e)} c "
        "where id in (select id from w)"
        for e in read
    )
    company_join = (
        f"left join ({companies}) c on c.id = w.id left join members m2 on m2.member = c.company_id"
        if via_company
        else "left join (select null::bigint as survivor) m2 on false"
    )
    rows = con.execute(
        f"""with members as (
                select ploomes_id as member, ploomes_id as survivor from {stored}
                union all
                select cast(unnest(string_split(aliases, ',')) as bigint), ploomes_id
                from {stored} where aliases <> ''
            ),
            w as (select unnest(?::bigint[]) as id)
            select w.id, coalesce(m1.survivor, m2.survivor)
            from w left join members m1 on m1.member = w.id {company_join}""",
        [[int(i) for i in ids]],
    ).fetchall()
    return {int(i): int(s) for i, s in rows if s is not None}
