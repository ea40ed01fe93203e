"""What every staging module shares in one build: the DuckDB connection, the mapping, the custom
fields' types, and where rejected rows and duplicate clusters are collected."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from ploomes_cx.decisions import Decision
from ploomes_cx.mapping import Mapping
from ploomes_cx.ploomes.custom_fields import read_fields
from ploomes_cx.ploomes.fields import FieldType
from ploomes_cx.staging.rejects import Rejects
from ploomes_cx.staging.tables import ID_SPACES, latest


@dataclass
class Context:
    con: duckdb.DuckDBPyConnection
    m: Mapping
    rejects: Rejects
    types: dict[str, FieldType]
    clusters: list[dict[str, Any]] = field(default_factory=list)
    # parents asked for by Id that Ploomes no longer has, by kind (`raw_dependencies` without payload)
    missing: dict[str, set[int]] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)  # a person's (`<name>.decisions.csv`)
    decided_seen: set[int] = field(default_factory=set)  # the decisions' Ids some party frame holds
    # SQL of the records to stage (columns `space`, `ploomes_id`: `tables.ID_SPACES`), for a
    # re-stage of what a change reached (docs/incremental-staging.md); None stages every record
    only: str | None = None
    # with `only`: SQL of the `stg_clients` staged before, where a child re-staged alone finds the
    # client of a contact the change did not reach (`stored.py`)
    stored_clients: str | None = None

    def orphan_rule(
        self, parents: pd.Series, kind: str = "contacts", otherwise: str = "client_not_found"
    ) -> pd.Series:
        """Why rows without a client were rejected: `parent_deleted` when the parent they point at
        was asked for by Id and Ploomes no longer has it, else `otherwise`."""
        gone = parents.isin(self.missing.get(kind, set()))
        return pd.Series(otherwise, index=parents.index).where(~gone, "parent_deleted")

    def view(self, entity: str) -> str:
        """SQL of each record's latest version in `raw_<entity>` (of the records in `only`)."""
        sql = latest(self.con, self.m.name, entity)
        if self.only is None:
            return sql
        space = ID_SPACES.get(entity, entity)
        return (
            f"(select * from {sql} where id in (select ploomes_id from {self.only} where space = '{space}'))"
        )

    def reached(self, space: str) -> set[int]:
        """With `only`, the Ids of `space` it names (records gone since included); else none."""
        if self.only is None:
            return set()
        rows = self.con.execute(f"select ploomes_id from {self.only} where space = ?", [space]).fetchall()
        return {int(r[0]) for r in rows}

    def custom_attributes(self, view: str, section: str, entity: str) -> pd.Series:
        """Per record, a JSON object of the custom fields mapped under `custom_fields.<section>`,
        keyed by CustomerX attribute; values that do not fit their field's type are cleared and
        listed (`custom_field_type`)."""
        mapped = getattr(self.m.custom_fields, section)
        wanted = [(f.ploomes, f.customerx, self.types[f.ploomes]) for f in mapped]
        attrs, misfits = read_fields(self.con, view, wanted)
        if len(misfits):
            everything = pd.Series(True, index=misfits.index)
            fields = "custom_field:" + misfits["attribute"].astype(str)
            for name, part in misfits.groupby(fields):
                self.rejects.add(
                    entity,
                    part,
                    everything[part.index],
                    str(name),
                    part["value"],
                    "custom_field_type",
                    "field_cleared",
                )
        return attrs
