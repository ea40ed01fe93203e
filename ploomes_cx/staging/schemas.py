"""Pandera contracts of the staging tables, and the split of a frame into valid and rejected rows.

The contracts are exposed as Dagster types so the UI shows each table's columns. Rows that break
a contract are not allowed to crash the run or to disappear: `split_valid` moves them, with the
column and check they broke, to the rejected table.
"""

from __future__ import annotations

import warnings

import dagster as dg
import pandas as pd
import pandera.pandas as pa
from dagster_pandera import pandera_schema_to_dagster_type
from pandera.typing import Series

from ploomes_cx.staging.text_checks import SPACE, Text  # also registers the text checks

# Whole-value RE2 patterns (`text_checks.full_match`, run by DuckDB)
DOCUMENT = r"([0-9]{11}|[0-9A-Z]{12}[0-9]{2})"
EMAIL = rf"[^@{SPACE}]+@[^@{SPACE}]+\.[a-z]{{2,63}}"
E164 = r"\+[1-9][0-9]{7,14}"
ID_LIST = r"([0-9]+(,[0-9]+)*)?"


class _Base(pa.DataFrameModel):
    class Config:
        strict = True
        coerce = False


class StgClients(_Base):
    """One row per CustomerX client, after deduplication (survivors only)."""

    external_id: Series[Text] = pa.Field(
        description="Our id of the record in CustomerX (external_id_*): the surviving Ploomes id",
        unique=True,
        text_length={"min_value": 1},
    )
    ploomes_id: Series[int] = pa.Field(description="Ploomes Id of the surviving record", unique=True, gt=0)
    aliases: Series[Text] = pa.Field(
        description="Ploomes Ids merged into this one as duplicates, comma-separated",
        full_match=ID_LIST,
    )
    source: Series[Text] = pa.Field(
        description="Ploomes source the client came from", isin=["organizations", "persons", "deal_contacts"]
    )
    name: Series[Text] = pa.Field(
        description="Display name, accents kept", text_length={"min_value": 1, "max_value": 255}
    )
    name_key: Series[Text] = pa.Field(
        description="Accent-folded, lower-case name used for matching", text_length={"min_value": 1}
    )
    legal_name: Series[Text] = pa.Field(
        description="Legal name (razão social) when Ploomes has one", nullable=True
    )
    document: Series[Text] = pa.Field(
        description="CPF (11 digits) or CNPJ (14, alphanumeric allowed) with valid check digits, bare",
        nullable=True,
        full_match=DOCUMENT,
    )
    document_type: Series[Text] = pa.Field(description="cpf or cnpj", nullable=True, isin=["cpf", "cnpj"])
    external_code: Series[Text] = pa.Field(
        description="External code from the mapping's external_code_field",
        nullable=True,
        text_length={"min_value": 1},
    )
    email: Series[Text] = pa.Field(
        description="Lower-case e-mail that passed syntax checks", nullable=True, full_match=EMAIL
    )
    phone: Series[Text] = pa.Field(description="Phone in E.164 (+55...)", nullable=True, full_match=E164)
    custom_attributes: Series[Text] = pa.Field(
        description="Mapped custom fields as JSON, CustomerX attribute name -> value", text_starts_with="{"
    )
    changed_at: Series[pd.Timestamp] = pa.Field(
        description="LastUpdateDate of the version kept (account-local time)"
    )
    window_start: Series[pd.Timestamp] = pa.Field(description="Sync window that version was extracted in")


class StgContacts(_Base):
    """One row per CustomerX contact, attached to a staged client."""

    external_id: Series[Text] = pa.Field(
        description="Our id of the record in CustomerX (external_id_*): the surviving Ploomes id",
        unique=True,
        text_length={"min_value": 1},
    )
    ploomes_id: Series[int] = pa.Field(description="Ploomes Id of the surviving record", gt=0)
    aliases: Series[Text] = pa.Field(
        description="Ploomes Ids merged into this one as duplicates, comma-separated",
        full_match=ID_LIST,
    )
    client_external_id: Series[Text] = pa.Field(
        description="external_id of the staged client this row belongs to", text_length={"min_value": 1}
    )
    name: Series[Text] = pa.Field(
        description="Display name, accents kept", text_length={"min_value": 1, "max_value": 255}
    )
    email: Series[Text] = pa.Field(
        description="Lower-case e-mail that passed syntax checks", unique=True, full_match=EMAIL
    )  # CustomerX: required, unique
    phone: Series[Text] = pa.Field(description="Phone in E.164 (+55...)", nullable=True, full_match=E164)
    document: Series[Text] = pa.Field(
        description="CPF (11 digits) or CNPJ (14, alphanumeric allowed) with valid check digits, bare",
        nullable=True,
        full_match=DOCUMENT,
    )
    external_code: Series[Text] = pa.Field(
        description="External code from the mapping's external_code_field", nullable=True
    )
    custom_attributes: Series[Text] = pa.Field(
        description="Mapped custom fields as JSON, CustomerX attribute name -> value", text_starts_with="{"
    )
    changed_at: Series[pd.Timestamp] = pa.Field(
        description="LastUpdateDate of the version kept (account-local time)"
    )
    window_start: Series[pd.Timestamp] = pa.Field(description="Sync window that version was extracted in")


class StgContracts(_Base):
    """One row per CustomerX contract: a won deal, or one product line of a won deal."""

    external_id: Series[Text] = pa.Field(
        description="Our id of the contract: the deal id, or deal and product line",
        unique=True,
        text_length={"min_value": 1},
    )
    ploomes_id: Series[int] = pa.Field(description="Ploomes Id of the surviving record", gt=0)
    client_external_id: Series[Text] = pa.Field(
        description="external_id of the staged client this row belongs to", text_length={"min_value": 1}
    )
    title: Series[Text] = pa.Field(description="Title shown in CustomerX", nullable=True)
    value: Series[float] = pa.Field(description="Contract value (deal Amount or product line total)", ge=0)
    sale_date: Series[pd.Timestamp] = pa.Field(description="Date the deal was won", nullable=True)
    product_name: Series[Text] = pa.Field(
        description="Product name (deal_products source only)", nullable=True
    )
    product_code: Series[Text] = pa.Field(
        description="Product code (deal_products source only)", nullable=True
    )
    custom_attributes: Series[Text] = pa.Field(
        description="Mapped custom fields as JSON, CustomerX attribute name -> value", text_starts_with="{"
    )
    changed_at: Series[pd.Timestamp] = pa.Field(
        description="LastUpdateDate of the version kept (account-local time)"
    )
    window_start: Series[pd.Timestamp] = pa.Field(description="Sync window that version was extracted in")
    status: Series[Text] = pa.Field(
        description="`active` (the deal is won), or `left_won`: CustomerX holds it and its deal is no "
        "longer won (lost or reopened), so `contracts.on_leave_won` applies",
        isin=["active", "left_won"],
    )
    status_changed_at: Series[pd.Timestamp] = pa.Field(
        description="When the deal left won (its LastUpdateDate), the cancellation date", nullable=True
    )


class StgTimeline(_Base):
    """One row per CustomerX timeline entry: a note, an activity or an attachment."""

    external_id: Series[Text] = pa.Field(description="Our id of the entry: kind and Ploomes id", unique=True)
    kind: Series[Text] = pa.Field(description="Timeline kind", isin=["note", "activity", "attachment"])
    ploomes_id: Series[int] = pa.Field(description="Ploomes Id of the surviving record", gt=0)
    client_external_id: Series[Text] = pa.Field(
        description="external_id of the staged client this row belongs to", text_length={"min_value": 1}
    )
    occurred_at: Series[pd.Timestamp] = pa.Field(description="When the interaction happened")
    title: Series[Text] = pa.Field(description="Title of the entry", nullable=True)
    body: Series[Text] = pa.Field(description="Text of the note or task", nullable=True)
    url: Series[Text] = pa.Field(description="Attachment URL", nullable=True)
    changed_at: Series[pd.Timestamp] = pa.Field(
        description="LastUpdateDate of the version kept (account-local time)"
    )
    window_start: Series[pd.Timestamp] = pa.Field(description="Sync window that version was extracted in")


class Rejected(_Base):
    """Every record, or field of a record, that did not make it into a staging table, and why."""

    entity: Series[Text] = pa.Field(description="Ploomes entity the record came from")
    ploomes_id: Series[int] = pa.Field(description="Ploomes Id of the record")
    field: Series[Text] = pa.Field(description="Column or rule scope that failed")
    value: Series[Text] = pa.Field(description="The offending value, as Ploomes sent it", nullable=True)
    rule: Series[Text] = pa.Field(
        description="Rule that fired (e.g. document_check_digits, client_not_found)"
    )
    outcome: Series[Text] = pa.Field(
        description="rejected (record dropped), field_cleared (field emptied, record kept) or reported",
        isin=["rejected", "field_cleared", "reported"],
    )
    window_start: Series[pd.Timestamp] = pa.Field(
        description="Window of the version that was checked", nullable=True
    )
    run_id: Series[Text] = pa.Field(description="Dagster run that staged it")


class DuplicateClusters(_Base):
    """Records merged by identifier or decision (kind merged), look-alikes left for a person (kind
    candidate), and a person's decisions: pairs kept apart (different), decisions naming Ids no
    record has (missing), `same` decisions a `different` one blocked (unjoined)."""

    cluster_id: Series[Text] = pa.Field(description="Stable id of the cluster", unique=True)
    entity: Series[Text] = pa.Field(description="clients or contacts")
    kind: Series[Text] = pa.Field(
        description="merged (by identifier or decision), candidate (look-alikes, for review), "
        "different (decided apart), missing (a decision naming Ids no record has), unjoined",
        isin=["merged", "candidate", "different", "missing", "unjoined"],
    )
    survivor_id: Series[pd.Int64Dtype] = pa.Field(
        description="Ploomes Id that stays (merged clusters)", nullable=True
    )
    member_ids: Series[Text] = pa.Field(
        description="Every Ploomes Id in the cluster, comma-separated", full_match=r"[0-9]+(,[0-9]+)+"
    )
    size: Series[int] = pa.Field(description="Number of records in the cluster", ge=2)
    rule: Series[Text] = pa.Field(description="Identifier or similarity rule that grouped them")
    score: Series[float] = pa.Field(description="Similarity 0..1 (1 for identifier merges)", ge=0, le=1)


MODELS: dict[str, type[_Base]] = {
    "clients": StgClients,
    "contacts": StgContacts,
    "contracts": StgContracts,
    "timeline": StgTimeline,
    "rejected": Rejected,
    "duplicate_clusters": DuplicateClusters,
}
# A frame validated by `validate` or `split_valid` carries its model's stamp here, so the Dagster
# type check of the output it becomes does not validate a million rows a second time.
VALIDATED = "ploomes_cx_pandera_model"


def _trusting(model: type[_Base]) -> dg.DagsterType:
    """The dagster-pandera type of `model` (its schema shown in the UI), whose check passes a frame
    this module validated and validates any other, such as a frame loaded from DuckDB."""
    with (
        warnings.catch_warnings()
    ):  # the converter is marked beta; it is the integration the design card names
        warnings.simplefilter("ignore")
        base = pandera_schema_to_dagster_type(model)

    def check(context: dg.TypeCheckContext, value: object) -> dg.TypeCheck:
        if isinstance(value, pd.DataFrame) and value.attrs.get(VALIDATED) == _stamp(model, value):
            return dg.TypeCheck(success=True, description=f"validated against {model.__name__} when staged")
        return base.type_check(context, value)

    return dg.DagsterType(
        type_check_fn=check,
        name=base.unique_name,
        description=base.description,
        metadata=base.metadata,
        typing_type=pd.DataFrame,
    )


DAGSTER_TYPES = {name: _trusting(model) for name, model in MODELS.items()}


def _stamp(model: type[_Base], frame: pd.DataFrame) -> tuple[object, ...]:
    """What a validation is remembered by: pandas copies `attrs` to frames derived from this one,
    so the shape and columns are part of it and a derived frame is validated again."""
    return (model.__name__, frame.shape, tuple(frame.columns))


def _marked(model: type[_Base], frame: pd.DataFrame) -> pd.DataFrame:
    frame.attrs[VALIDATED] = _stamp(model, frame)
    return frame


def validate(model: type[_Base], frame: pd.DataFrame, lazy: bool = False) -> pd.DataFrame:
    """`model.validate`, remembered on the frame (`VALIDATED`). In place: the frames are staging's
    own, and Pandera would otherwise copy a million-row table before checking it."""
    return _marked(model, model.validate(frame, lazy=lazy, inplace=True))


def split_valid(model: type[_Base], frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows that pass, failure cases with `index`, `column`, `check`, `failure_case`).

    A failure not tied to a row (a missing column, a wrong dtype) is a bug of ours, not bad
    data, and is raised.
    """
    try:
        return validate(model, frame, lazy=True), pd.DataFrame(
            columns=["index", "column", "check", "failure_case"]
        )
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        structural = cases[cases["index"].isna()]
        if len(structural):
            raise
        # every failure is a row's: the other rows passed every check (a duplicate's copies are
        # all reported), so they need no second validation
        bad = set(cases["index"].astype(int))
        valid = frame.drop(index=list(bad))
        return _marked(model, valid), cases[["index", "column", "check", "failure_case"]]
