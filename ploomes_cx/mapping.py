"""Mapping files: one YAML file in `mappings/` describes one Ploomes -> CustomerX integration.

The format is the public contract (shared/specs/mapping-and-cli.md §1). The model forbids unknown
keys so that a typo ("identifers:") fails loudly instead of silently falling back to a default, and
every error is reported with the file, the key path and the allowed values, never as a traceback.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ploomes_cx.alerts.config import Alerts
from ploomes_cx.customerx.endpoints import DEFAULT_ENDPOINTS

ClientSource = Literal["organizations", "persons", "deals"]
ContactSource = Literal["organizations", "persons", "deals"]
ContractSource = Literal["won_deals", "deal_products", "none"]
TimelineKind = Literal["notes", "activities", "attachments"]
Identifier = Literal["cnpj_cpf", "external_code", "email"]

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class MappingError(Exception):
    """A mapping file that cannot be used; the message is meant for the person who wrote it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PloomesSettings(_Strict):
    base_url_env: str = Field("PLOOMES_BASE_URL", pattern=ENV_NAME_PATTERN)
    user_key_env: str = Field("PLOOMES_USER_KEY", pattern=ENV_NAME_PATTERN)
    requests_per_minute: int = Field(120, ge=1, le=6000)
    page_size: int = Field(300, ge=1, le=1000)
    # Added keys (not in the contract, all optional):
    timeout_seconds: float = Field(60.0, gt=0, le=600)
    max_attempts: int = Field(8, ge=1, le=50)
    # added: the first wait before a retry; each later one doubles, with jitter, up to a minute
    first_retry_seconds: float = Field(1.0, gt=0, le=60)
    # I (ploomes-api.md §5): offset-less dates in responses are read in this zone.
    naive_datetime_timezone: str = "America/Sao_Paulo"
    # I (ploomes-api.md §5): `offset` sends 2026-03-01T00:00:00-03:00 (seen in public code),
    # `utc` sends 2026-03-01T03:00:00Z.
    datetime_literal: Literal["offset", "utc"] = "offset"
    # I (ploomes-api.md §6): which OtherProperties slot holds the value of a field type, by TypeId,
    # for types the catalogue does not make plain (e.g. {9: UserValueName}); see ploomes/fields.py.
    field_type_slots: dict[int, str] = Field(default_factory=dict)
    # I (ploomes-api.md §2: `eq` C, `or` I, `in` absent): how a list of Ids is asked. `probe`: the first
    # the account takes of `in`, `or`, `eq` (one Id a request), kept in the state folder (ploomes/forms.py);
    # naming a form pins it.
    id_list_filter: Literal["probe", "in", "or", "eq"] = "probe"
    # added: Ids asked for per request when fetching by Id (the URL stays well under 2,000 chars)
    ids_per_request: int = Field(100, ge=1, le=300)

    @field_validator("field_type_slots")
    @classmethod
    def _slots(cls, value: dict[int, str]) -> dict[int, str]:
        from ploomes_cx.ploomes.fields import VALUE_SLOTS

        wrong = sorted(s for s in value.values() if s not in VALUE_SLOTS)
        if wrong:
            raise ValueError(f"{wrong} are not OtherProperties slots; allowed: {', '.join(VALUE_SLOTS)}")
        return value

    @field_validator("naive_datetime_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _check_zone(value)


class EndpointOverride(_Strict):
    method: Literal["GET", "POST", "PUT", "DELETE"] | None = None
    path: str | None = Field(None, pattern=r"^/[A-Za-z0-9_/{}-]*$")
    external_id: Literal["query", "path", "none"] | None = None
    param: str | None = None


ENDPOINT_NAMES = Literal[tuple(DEFAULT_ENDPOINTS)]  # type: ignore[valid-type]


class CustomerXSettings(_Strict):
    base_url_env: str = Field("CUSTOMERX_BASE_URL", pattern=ENV_NAME_PATTERN)
    token_env: str = Field("CUSTOMERX_TOKEN", pattern=ENV_NAME_PATTERN)
    requests_per_minute: int = Field(60, ge=1, le=6000)
    auth_scheme: Literal["raw", "bearer"] = "raw"
    # Added keys (not in the contract, all optional):
    timeout_seconds: float = Field(60.0, gt=0, le=600)
    max_attempts: int = Field(6, ge=1, le=50)
    # added: as ploomes.first_retry_seconds
    first_retry_seconds: float = Field(1.0, gt=0, le=60)
    # I (customerx-api.md §8.4): the timeline `operation` value; the enum is not documented.
    timeline_operation: str = "client_note"
    # I (customerx-api.md §7, §8): per-operation overrides of the endpoint table.
    endpoints: dict[ENDPOINT_NAMES, EndpointOverride] = Field(default_factory=dict)
    # How a new record finds the CustomerX record it may be (load/adoption.py): `auto` lists every
    # record on a mapping's first loads, then looks up by filter or lists, whichever costs fewer
    # requests; `listing` always lists, for an account whose list filters match differently (I);
    # `lookup` looks up after the first loads even when a listing would cost less.
    adoption: Literal["auto", "listing", "lookup"] = "auto"


class SyncSettings(_Strict):
    cadence: Literal["daily", "hourly"] = "daily"
    start: str = "2026-01-01"
    timezone: str = "America/Sao_Paulo"
    # added: how long after a window ends its scheduled run starts, so that records saved in the
    # window's last seconds (Ploomes stamps LastUpdateDate at commit) are visible to the read.
    schedule_delay_minutes: int = Field(default=10, ge=0, le=59)
    # added: how long after its scheduled run a window's load may take before the load assets
    # show as late in the UI (their freshness policy)
    freshness_grace_minutes: int = Field(default=60, ge=1, le=24 * 60)
    # §4.1: the first window also carries everything changed before it (the whole account)
    history: bool = True
    # added: a range of windows (`sync --window A..B`, a UI backfill) runs this many windows per
    # run: one extract each, then one staging and one load for all of them
    windows_per_run: int = Field(default=31, ge=1, le=10_000)

    @field_validator("start")
    @classmethod
    def _date(cls, value: Any) -> str:
        text = str(value)
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError('must be a date written YYYY-MM-DD, e.g. "2026-01-01"')
        import datetime as _dt

        try:
            _dt.date.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"is not a real date ({exc})") from None
        return text

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _check_zone(value)


class ClientsSettings(_Strict):
    source: ClientSource = "organizations"


class ContactsSettings(_Strict):
    source: ContactSource = "persons"


class ContractsSettings(_Strict):
    source: ContractSource = "won_deals"
    # §4.2: what happens to the contract of a deal that is no longer won
    on_leave_won: Literal["cancel", "keep"] = "cancel"


class DeletesSettings(_Strict):
    """§4.2: what `reconcile` does to records CustomerX holds from us whose Ploomes record is gone."""

    policy: Literal["ignore", "cancel", "delete"] = "cancel"
    max_share: float = Field(0.10, ge=0, le=1)


WebhookAction = Literal["create", "update", "delete", "win", "lose", "reopen"]
WebhookEntity = Literal["contact", "deal", "order", "quote", "interaction_record", "task"]


class WebhooksSettings(_Strict):
    """§4.3: the environment variable holding the ValidationKey Ploomes sends back.

    Added: `action_ids` / `entity_ids` pin a number where an account's `/Webhooks@Actions` or
    `/Fields@Entities` names it differently from what we look for (the numbers are inferred, I).
    `key_echo` says where Ploomes puts the key (I): `any` header or body. `retention_days`: see live/events.py.
    """

    validation_key_env: str = Field("PLOOMES_WEBHOOK_KEY", pattern=ENV_NAME_PATTERN)
    action_ids: dict[WebhookAction, int] = Field(default_factory=dict)
    entity_ids: dict[WebhookEntity, int] = Field(default_factory=dict)
    key_echo: Literal["any", "header", "body"] = "any"
    retention_days: float = Field(7.0, ge=0)  # an applied event's payload is personal data


class CustomField(_Strict):
    ploomes: str = Field(min_length=1)
    customerx: str = Field(min_length=1)


class CustomFields(_Strict):
    clients: list[CustomField] = Field(default_factory=list)
    contacts: list[CustomField] = Field(default_factory=list)
    contracts: list[CustomField] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_targets(self) -> CustomFields:
        for entity in ("clients", "contacts", "contracts"):
            names = [f.customerx for f in getattr(self, entity)]
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise ValueError(f"{entity}: CustomerX attribute(s) {repeated} are mapped more than once")
        return self

    def all_keys(self) -> set[str]:
        return {f.ploomes for fs in (self.clients, self.contacts, self.contracts) for f in fs}


class QualitySettings(_Strict):
    max_rejected_ratio: float = Field(0.05, ge=0, le=1)


class Mapping(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    ploomes: PloomesSettings = Field(default_factory=PloomesSettings)
    customerx: CustomerXSettings = Field(default_factory=CustomerXSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    clients: ClientsSettings = Field(default_factory=ClientsSettings)
    contacts: ContactsSettings = Field(default_factory=ContactsSettings)
    contracts: ContractsSettings = Field(default_factory=ContractsSettings)
    timeline: list[TimelineKind] = Field(default_factory=lambda: ["notes", "activities", "attachments"])
    identifiers: list[Identifier] = Field(default_factory=lambda: ["cnpj_cpf", "external_code", "email"])
    external_code_field: str = Field("Key", min_length=1)
    custom_fields: CustomFields = Field(default_factory=CustomFields)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    deletes: DeletesSettings = Field(default_factory=DeletesSettings)
    webhooks: WebhooksSettings = Field(default_factory=WebhooksSettings)
    # added: owners shown on every asset of the mapping (e-mails or `team:<name>`), so the UI says
    # whom to ask about a failed check
    owners: list[str] = Field(default_factory=lambda: ["team:ploomes-cx"])
    alerts: Alerts | None = None  # added: where incidents are sent (docs/alerts.md); absent = none
    # Where the file was read from; not a YAML key.
    source_path: str = Field("", exclude=True)

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in _reserved_sql_words():
            raise ValueError(
                f"{value!r} is a reserved SQL word; the DuckDB schema is named after the mapping, "
                "so pick another name (e.g. add a suffix)"
            )
        return value

    @field_validator("timeline", "identifiers")
    @classmethod
    def _no_repeats(cls, value: list[str]) -> list[str]:
        repeated = sorted({v for v in value if value.count(v) > 1})
        if repeated:
            raise ValueError(f"lists {repeated} more than once; each value may appear once")
        return value

    @property
    def read_field_keys(self) -> set[str]:
        """Every Ploomes custom field the mapping reads: the mapped ones and a custom external code."""
        extra = {self.external_code_field} if self.uses_external_code_custom_field else set()
        return self.custom_fields.all_keys() | extra

    @property
    def uses_external_code_custom_field(self) -> bool:
        return self.external_code_field != "Key"


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """PyYAML keeps the last of two equal keys; in a mapping file that hides a mistake, so refuse it.
    libyaml's parser when present: every process loading the code location parses every mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in the same block", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


@functools.cache
def _reserved_sql_words() -> frozenset[str]:
    import duckdb

    with duckdb.connect() as con:
        rows = con.execute(
            "select keyword_name from duckdb_keywords() where keyword_category != 'unreserved'"
        ).fetchall()
    return frozenset(r[0] for r in rows)


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone name, e.g. America/Sao_Paulo") from None
    return value


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """The keys allowed at `loc` (the parent of an unknown key), to put in the error message."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part) if isinstance(current, type) else None
        if field is None:
            return None
        annotation = field.annotation
        args = get_args(annotation)
        current = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), annotation)
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
    return [f.alias or k for k, f in current.model_fields.items() if k != "source_path"]


def _describe(err: dict[str, Any]) -> str:
    loc = tuple(err["loc"])
    path = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(Mapping, loc[:-1])
        hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
        return f"{path}: unknown key{hint}"
    if err["type"] == "missing":
        return f"{path}: required key is missing"
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "string_pattern_mismatch" and loc[-1] == "name":
        message = "must match [a-z][a-z0-9_]* (lower-case letter, then lower-case letters, digits, _)"
    value = err.get("input")
    shown = f" (got {value!r})" if value is not None and not isinstance(value, dict | list) else ""
    return f"{path}: {message}{shown}"


def parse_mapping(data: Any, source: str) -> Mapping:
    """Validate already-parsed YAML; `source` names the file in every message."""
    if not isinstance(data, dict):
        raise MappingError(
            f"{source}: the file must hold a YAML mapping (key: value lines), got {type(data).__name__}"
        )
    if "source_path" in data:
        raise MappingError(f"{source}: source_path: unknown key")
    try:
        return Mapping.model_validate({**data, "source_path": source})
    except ValidationError as exc:
        lines = [_describe(e) for e in exc.errors()]
        raise MappingError(f"{source}: invalid mapping\n  " + "\n  ".join(lines)) from None


def load_mapping(path: str | Path) -> Mapping:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MappingError(f"{path}: no such mapping file") from None
    except OSError as exc:
        raise MappingError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise MappingError(f"{path}: not valid YAML{where}: {problem}") from None
    return parse_mapping(data, str(path))
