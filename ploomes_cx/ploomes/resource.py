"""The Ploomes client as a Dagster resource: configuration in, `PloomesApi` out."""

from __future__ import annotations

import logging
from typing import ClassVar

import dagster as dg

from ploomes_cx.mapping import Mapping
from ploomes_cx.ploomes.client import PloomesApi
from ploomes_cx.ploomes.forms import Forms
from ploomes_cx.runtime.api_account import ApiAccountResource


class PloomesResource(ApiAccountResource):
    """One Ploomes account. `user_key` comes from an `EnvVar`, so the UI shows its name only."""

    API: ClassVar[str] = "ploomes"

    user_key: str
    user_key_env: str = "PLOOMES_USER_KEY"
    requests_per_minute: float = 120
    page_size: int = 300
    timeout_seconds: float = 60.0
    max_attempts: int = 8
    backoff_initial_seconds: float = 1.0
    datetime_literal: str = "offset"
    id_list_filter: str = "probe"  # or a pinned form: in | or | eq
    ids_per_request: int = 100
    # the mapping whose probed query forms are kept in the state folder (`forms.py`); "" in memory
    forms_name: str = ""

    @property
    def secret_env(self) -> str:
        return self.user_key_env

    def api(self, logger: logging.Logger | logging.LoggerAdapter | None = None) -> PloomesApi:
        return PloomesApi(
            self.base_url,
            self.user_key,
            user_key_env=self.user_key_env,
            requests_per_minute=self.requests_per_minute,
            page_size=self.page_size,
            timeout_seconds=self.timeout_seconds,
            max_attempts=self.max_attempts,
            backoff_initial_seconds=self.backoff_initial_seconds,
            datetime_literal=self.datetime_literal,
            forms=self.forms(),
            ids_per_request=self.ids_per_request,
            pacing_file=self.pacing_file(),
            logger=logger,
        )

    def forms(self) -> Forms:
        pinned = {} if self.id_list_filter == "probe" else {"id_list": self.id_list_filter}
        return Forms.stored(self.forms_name, pinned) if self.forms_name else Forms(pinned=pinned)


def ploomes_resource(m: Mapping) -> PloomesResource:
    return PloomesResource(
        base_url=dg.EnvVar(m.ploomes.base_url_env),
        user_key=dg.EnvVar(m.ploomes.user_key_env),
        user_key_env=m.ploomes.user_key_env,
        requests_per_minute=m.ploomes.requests_per_minute,
        page_size=m.ploomes.page_size,
        timeout_seconds=m.ploomes.timeout_seconds,
        max_attempts=m.ploomes.max_attempts,
        backoff_initial_seconds=m.ploomes.first_retry_seconds,
        datetime_literal=m.ploomes.datetime_literal,
        id_list_filter=m.ploomes.id_list_filter,
        ids_per_request=m.ploomes.ids_per_request,
        forms_name=m.name,
    )
