"""What `fields` and `init` read from a live Ploomes account: its field catalogue with types and
options, and a sample of its most recently changed records. HTTP only, through the client."""

from __future__ import annotations

import os
from typing import Any

from ploomes_cx.mapping import Mapping
from ploomes_cx.ploomes.client import CallStats, PloomesApi

CATALOGUE_EXPAND = "Type,OptionsTable($expand=Options)"
MAX_SAMPLE = 300  # one page (ploomes-api.md §3)


def ploomes_api(m: Mapping) -> PloomesApi:
    """A client from the mapping's variables, with few retries: a person is waiting at the prompt."""
    return PloomesApi(
        os.environ[m.ploomes.base_url_env],
        os.environ[m.ploomes.user_key_env],
        user_key_env=m.ploomes.user_key_env,
        requests_per_minute=m.ploomes.requests_per_minute,
        timeout_seconds=30.0,
        max_attempts=3,
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
