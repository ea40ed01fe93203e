"""Every API client of a process shares one TLS context (issue 29): loading the CA bundle again
for each client cost 20-50 ms per step."""

from __future__ import annotations

import ssl

from ploomes_cx.customerx.client import CustomerXApi
from ploomes_cx.ploomes.client import PloomesApi
from ploomes_cx.runtime.tls import tls_context


def test_clients_of_both_apis_load_the_ca_bundle_at_most_once(monkeypatch):
    loads: list[object] = []
    real = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loads.append(args or kwargs)
        real(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    tls_context.cache_clear()
    clients = [PloomesApi("https://ploomes.example", "k") for _ in range(3)]
    clients += [CustomerXApi("https://customerx.example", "t") for _ in range(3)]
    assert len(loads) == 1
    for client in clients:
        client.close()


def test_the_shared_context_verifies_certificates_and_host_names():
    context = tls_context()
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.get_ca_certs()  # the bundle is loaded
