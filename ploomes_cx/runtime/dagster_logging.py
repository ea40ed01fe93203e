"""A guard against a deadlock between two Dagster runs executing in one process.

Dagster calls `logging.config.dictConfig` each time a run starts, even when the instance's
dagster.yaml configures no Python log handlers (1.13, `get_yaml_python_handlers`). `dictConfig`
holds the logging module's lock while it closes every handler, taking each handler's lock; a run
already going in another thread holds its event-log handler's lock while it writes an event, and
SQLAlchemy's debug logging inside that write wants the module's lock: each thread waits for the
other forever. The CLI runs the next chunk's extraction beside a load (`runner.py`), so it starts
runs while another is logging. With no handlers configured there is nothing to configure, and
this makes Dagster skip the call; a dagster.yaml that does configure handlers keeps Dagster's
behaviour.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import dagster as dg

_GUARDED = "_ploomes_cx_guarded"


def skip_empty_log_config() -> None:
    """Make `DagsterInstance.get_yaml_python_handlers` return no handlers, without touching the
    logging module, when the instance configures none. Idempotent."""
    original: Callable[[dg.DagsterInstance], Sequence[logging.Handler]] = (
        dg.DagsterInstance.get_yaml_python_handlers
    )
    if getattr(original, _GUARDED, False):
        return

    def get_yaml_python_handlers(self: dg.DagsterInstance) -> Sequence[logging.Handler]:
        if not self.get_python_log_dagster_handler_config():
            return []
        return original(self)

    setattr(get_yaml_python_handlers, _GUARDED, True)
    dg.DagsterInstance.get_yaml_python_handlers = get_yaml_python_handlers  # type: ignore[method-assign]
