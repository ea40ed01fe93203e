"""The CustomerX client as a Dagster resource: configuration in, `CustomerXApi` out."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import dagster as dg
from pydantic import Field

from ploomes_cx.customerx.client import CustomerXApi
from ploomes_cx.customerx.endpoints import endpoints_with, overrides_of
from ploomes_cx.mapping import Mapping
from ploomes_cx.runtime.api_account import ApiAccountResource


class CustomerXResource(ApiAccountResource):
    """One CustomerX account. `token` comes from an `EnvVar`, so the UI shows its name only."""

    API: ClassVar[str] = "customerx"

    token: str
    token_env: str = "CUSTOMERX_TOKEN"
    auth_scheme: str = "raw"
    requests_per_minute: float = 60
    timeout_seconds: float = 60.0
    max_attempts: int = 6
    backoff_initial_seconds: float = 1.0
    endpoint_overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @property
    def secret_env(self) -> str:
        return self.token_env

    def api(self, logger: logging.Logger | logging.LoggerAdapter | None = None) -> CustomerXApi:
        return CustomerXApi(
            self.base_url,
            self.token,
            token_env=self.token_env,
            auth_scheme=self.auth_scheme,
            requests_per_minute=self.requests_per_minute,
            timeout_seconds=self.timeout_seconds,
            max_attempts=self.max_attempts,
            backoff_initial_seconds=self.backoff_initial_seconds,
            endpoints=endpoints_with(self.endpoint_overrides),
            pacing_file=self.pacing_file(),
            logger=logger,
        )


def customerx_resource(m: Mapping) -> CustomerXResource:
    return CustomerXResource(
        base_url=dg.EnvVar(m.customerx.base_url_env),
        token=dg.EnvVar(m.customerx.token_env),
        token_env=m.customerx.token_env,
        auth_scheme=m.customerx.auth_scheme,
        requests_per_minute=m.customerx.requests_per_minute,
        timeout_seconds=m.customerx.timeout_seconds,
        max_attempts=m.customerx.max_attempts,
        backoff_initial_seconds=m.customerx.first_retry_seconds,
        endpoint_overrides=overrides_of(m.customerx),
    )
