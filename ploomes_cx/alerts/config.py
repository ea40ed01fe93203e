"""The mapping's `alerts:` key: where a mapping's incidents are sent, and when refusals count as one.

Imports nothing from `ploomes_cx.mapping`: that module imports this model for its `alerts` field,
so importing back would be a circle. The model forbids unknown keys like the rest of the mapping
(mapping.py turns the error into one naming the file and the key path). Secrets (the webhook URL,
the SMTP password) are never keys here, only the names of the environment variables holding them.
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
EMAIL_PATTERN = r"^[^@\s<>]+@[^@\s<>]+$"
UI_URL_ENV = "PLOOMES_CX_UI_URL"
DEFAULT_UI_URL = "http://127.0.0.1:3000"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class EmailTarget(_Strict):
    """An SMTP server and the addresses an incident goes to (stdlib smtplib, no extra package)."""

    host: str = Field(min_length=1)
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = True  # upgrade the plain connection with STARTTLS (port 587)
    ssl: bool = False  # implicit TLS from the first byte (port 465); excludes starttls
    username: str | None = Field(None, min_length=1)  # login name; default: `from`
    password_env: str | None = Field(None, pattern=ENV_NAME_PATTERN)  # no login when unset
    sender: str = Field(alias="from", pattern=EMAIL_PATTERN)
    to: list[str] = Field(min_length=1)
    timeout_seconds: float = Field(15.0, gt=0, le=120)

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        import re

        wrong = [a for a in value if not re.fullmatch(EMAIL_PATTERN, a)]
        if wrong:
            raise ValueError(f"{wrong} are not e-mail addresses")
        return value

    @model_validator(mode="after")
    def _one_tls(self) -> EmailTarget:
        if self.ssl and self.starttls:
            raise ValueError("ssl: true (implicit TLS, port 465) and starttls: true exclude each other")
        return self

    @property
    def login(self) -> str:
        return self.username or self.sender


class Alerts(_Strict):
    """Absent from a mapping: no alert sensors at all. Present: at least one target."""

    webhook_url_env: str | None = Field(None, pattern=ENV_NAME_PATTERN)
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=120)
    email: EmailTarget | None = None
    # a run whose share of records CustomerX refused is above this is an incident (1 turns it off)
    max_refused_share: float = Field(0.05, ge=0, le=1)
    ui_url: str | None = Field(None, pattern=r"^https?://[^\s/]+(/\S*)?$")

    @model_validator(mode="after")
    def _a_target(self) -> Alerts:
        if self.webhook_url_env is None and self.email is None:
            raise ValueError("names no target: set webhook_url_env, email, or both")
        return self

    def run_url(self, run_id: str) -> str:
        """The run's page in the Dagster UI: `ui_url`, else $PLOOMES_CX_UI_URL, else the local `dg dev`."""
        base = self.ui_url or os.environ.get(UI_URL_ENV) or DEFAULT_UI_URL
        return f"{base.rstrip('/')}/runs/{run_id}"

    def env_names(self) -> list[str]:
        """The variables holding this key's secrets, to keep their values out of every message."""
        names = [self.webhook_url_env, self.email.password_env if self.email else None]
        return [n for n in names if n]
