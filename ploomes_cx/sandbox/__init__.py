"""Local stand-ins for the Ploomes and CustomerX APIs, used by the demo, the tests and benchmarks."""

from __future__ import annotations

from ploomes_cx.mapping import Mapping
from ploomes_cx.sandbox.customerx_server import CustomerXSandbox
from ploomes_cx.sandbox.ploomes_data import PloomesDataset
from ploomes_cx.sandbox.ploomes_server import PloomesSandbox

DEFAULT_PLOOMES_PORT = 8765
DEFAULT_CUSTOMERX_PORT = 8766


def sandbox_env(
    m: Mapping, ploomes: PloomesSandbox, customerx: CustomerXSandbox | None = None
) -> dict[str, str]:
    """The environment variables `m` reads, pointed at the sandbox servers."""
    env = {m.ploomes.base_url_env: ploomes.url, m.ploomes.user_key_env: ploomes.user_key}
    if customerx is not None:
        env |= {m.customerx.base_url_env: customerx.url, m.customerx.token_env: customerx.token}
    return env


__all__ = [
    "DEFAULT_CUSTOMERX_PORT",
    "DEFAULT_PLOOMES_PORT",
    "CustomerXSandbox",
    "PloomesDataset",
    "PloomesSandbox",
    "sandbox_env",
]
