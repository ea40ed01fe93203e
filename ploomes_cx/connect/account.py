"""The clients the connect commands use (few retries, no pacing file: a person is waiting and no
state may be left behind), and what `fields` and `init` read from a live Ploomes account: its
field catalogue with types and options, and a sample of its most recently changed records.
HTTP only, through the clients."""

from __future__ import annotations

import os
from typing import Any

from ploomes_cx.customerx.client import CustomerXApi
from ploomes_cx.customerx.endpoints import endpoints_with, overrides_of
from ploomes_cx.mapping import Mapping
from ploomes_cx.ploomes.client import CallStats, PloomesApi

CATALOGUE_EXPAND = "Type,OptionsTable($expand=Options)"
MAX_SAMPLE = 300  # one page (ploomes-api.md §3)


def ploomes_api(m: Mapping, attempts: int = 3, timeout: float = 30.0) -> PloomesApi:
    return PloomesApi(
        os.environ[m.ploomes.base_url_env],
        os.environ[m.ploomes.user_key_env],
        user_key_env=m.ploomes.user_key_env,
        requests_per_minute=m.ploomes.requests_per_minute,
        timeout_seconds=timeout,
        max_attempts=attempts,
        backoff_initial_seconds=m.ploomes.first_retry_seconds,
        datetime_literal=m.ploomes.datetime_literal,
    )


def customerx_api(m: Mapping, attempts: int = 3, timeout: float = 30.0) -> CustomerXApi:
    return CustomerXApi(
        os.environ[m.customerx.base_url_env],
        os.environ[m.customerx.token_env],
        token_env=m.customerx.token_env,
        auth_scheme=m.customerx.auth_scheme,
        requests_per_minute=m.customerx.requests_per_minute,
        timeout_seconds=timeout,
        max_attempts=attempts,
        backoff_initial_seconds=m.customerx.first_retry_seconds,
        endpoints=endpoints_with(overrides_of(m.customerx)),
    )


def catalogue(api: PloomesApi) -> list[dict[str, Any]]:
    return api.fields(CallStats(), CATALOGUE_EXPAND)


def recent(api: PloomesApi, path: str, n: int) -> list[dict[str, Any]]:
    """The `n` most recently changed records of a set, with their custom field values (one request)."""
    params = {
        "$top": str(min(n, MAX_SAMPLE)),
        "$orderby": "LastUpdateDate desc",
        "$select": "Id",
        "$expand": "OtherProperties",
    }
    return list(api.get(path, params, CallStats()).get("value", []))
