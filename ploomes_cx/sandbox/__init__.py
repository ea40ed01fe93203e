"""Local stand-ins for the Ploomes and CustomerX APIs, used by the demo, the tests and benchmarks."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from ploomes_cx.mapping import Mapping
from ploomes_cx.sandbox.customerx_server import CustomerXSandbox
from ploomes_cx.sandbox.ploomes_data import PloomesDataset
from ploomes_cx.sandbox.ploomes_server import PloomesSandbox

DEFAULT_PLOOMES_PORT = 8765
DEFAULT_CUSTOMERX_PORT = 8766
SANDBOX_PLOOMES_KEY = "sandbox-ploomes-key"


def sandbox_env(
    m: Mapping, ploomes: PloomesSandbox, customerx: CustomerXSandbox | None = None
) -> dict[str, str]:
    """The environment variables `m` reads, pointed at the sandbox servers."""
    env = {m.ploomes.base_url_env: ploomes.url, m.ploomes.user_key_env: ploomes.user_key}
    if customerx is not None:
        env |= {m.customerx.base_url_env: customerx.url, m.customerx.token_env: customerx.token}
    return env


@contextmanager
def patched_environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


__all__ = [
    "DEFAULT_PLOOMES_PORT",
    "SANDBOX_PLOOMES_KEY",
    "PloomesDataset",
    "PloomesSandbox",
    "patched_environ",
    "sandbox_env",
]
