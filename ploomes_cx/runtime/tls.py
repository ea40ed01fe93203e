"""One TLS context for every HTTP client of the process.

httpx builds a fresh `ssl.SSLContext` for each `Client` unless it is given one, and loading the
CA bundle is 20-50 ms each time: more than a whole incremental extraction step against a fast
API, paid by every step of every run (each opens its own client). An `SSLContext` is safe to
share between clients and threads, so the process builds one, the way httpx would (certifi's
bundle, or `$SSL_CERT_FILE` / `$SSL_CERT_DIR` when set), on first use.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()
