"""What the Ploomes and CustomerX resources share: one API account, paced and taken in turns."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import ClassVar

import dagster as dg

from ploomes_cx.runtime.pacing import account_pacing_file, account_turn
from ploomes_cx.runtime.state import home


class ApiAccountResource(dg.ConfigurableResource):
    """Base of both API resources. Steps and runs on one account (URL + credential variable)
    share its pacing file and its step lock; `share_pacing: false` isolates a resource (tests)."""

    API: ClassVar[str] = ""

    base_url: str
    share_pacing: bool = True

    @property
    def secret_env(self) -> str:
        raise NotImplementedError

    def pacing_file(self) -> Path | None:
        if not self.share_pacing:
            return None
        return account_pacing_file(home(), self.API, self.base_url, self.secret_env)

    def one_step_at_a_time(
        self, logger: logging.Logger | logging.LoggerAdapter
    ) -> contextlib.AbstractContextManager:
        """Held by each step that calls this account, so such steps take turns (see `pacing.exclusive`)."""
        if not self.share_pacing:
            return contextlib.nullcontext()
        return account_turn(home(), self.API, self.base_url, self.secret_env, logger)
