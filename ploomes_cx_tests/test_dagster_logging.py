"""Two runs in one process must not deadlock in `logging.config.dictConfig` (runtime/dagster_logging.py):
a run on an instance that configures no Python log handlers leaves the logging module alone."""

import logging.config

import dagster as dg
import pytest

from ploomes_cx.runtime.dagster_logging import skip_empty_log_config


@dg.op
def _noop() -> None:
    pass


@dg.job
def _job() -> None:
    _noop()


def test_a_run_reconfigures_python_logging_only_when_the_instance_configures_handlers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    skip_empty_log_config()
    skip_empty_log_config()  # idempotent: one wrapper, not two
    configured: list[dict] = []
    monkeypatch.setattr(logging.config, "dictConfig", configured.append)
    with dg.instance_for_test() as instance:
        assert _job.execute_in_process(instance=instance).success
    assert configured == []
    handlers = {"handlers": {"quiet": {"class": "logging.NullHandler"}}}
    with dg.instance_for_test(overrides={"python_logs": {"dagster_handler_config": handlers}}) as instance:
        assert _job.execute_in_process(instance=instance).success
    assert configured and all("quiet" in conf["handlers"] for conf in configured)
