"""The CustomerX operations the load uses, in one declarative table an operator can override.

Paths and where the external id travels are partly inferred (customerx-api.md §7, §8: I), so
every operation is data: method, path, and the external id's place (`query` under `param`,
`path` as the last segment, or `none`). A mapping overrides entries under
`customerx.endpoints`, e.g. `update_client: {method: PUT, path: /clients, external_id: path}`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

Location = Literal["query", "path", "none"]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    external_id: Location = "none"
    param: str | None = None

    def url(self, external_id: str | None) -> tuple[str, dict[str, str]]:
        """Path and query parameters for a call about `external_id`."""
        if self.external_id == "path":
            if external_id is None:
                raise ValueError(f"{self.method} {self.path} needs an external id")
            return f"{self.path.rstrip('/')}/{external_id}", {}
        if self.external_id == "query":
            if external_id is None:
                raise ValueError(f"{self.method} {self.path} needs an external id")
            return self.path, {self.param or "external_id": external_id}
        return self.path, {}


DEFAULT_ENDPOINTS: dict[str, Endpoint] = {
    "list_clients": Endpoint("GET", "/clients"),  # C2
    "create_client": Endpoint("POST", "/clients"),  # C2
    "update_client": Endpoint("PUT", "/clients", "query", "external_id_client"),  # C (S4 query form)
    "list_contacts": Endpoint("GET", "/contacts"),  # C2
    "create_contact": Endpoint("POST", "/contacts"),  # C2
    "update_contact": Endpoint("PUT", "/contacts", "query", "external_id_contact"),  # C, param name I
    "list_contracts": Endpoint("GET", "/contracts"),  # C2
    "create_contract": Endpoint("POST", "/contracts"),  # C
    "update_contract": Endpoint("PUT", "/contracts", "query", "external_id_contract"),  # C, param name I
    # I: a record without an external id (made in the UI) is written by its numeric id; S2 does
    # `PUT /contacts/?id=<id>`, the same form is assumed for clients and contracts.
    "update_client_by_id": Endpoint("PUT", "/clients", "query", "id"),
    "update_contact_by_id": Endpoint("PUT", "/contacts", "query", "id"),
    "update_contract_by_id": Endpoint("PUT", "/contracts", "query", "id"),
    # I: the fallback when the server does not take `?id=`: the numeric id as the last segment
    "update_client_by_path_id": Endpoint("PUT", "/clients", "path"),
    "update_contact_by_path_id": Endpoint("PUT", "/contacts", "path"),
    "update_contract_by_path_id": Endpoint("PUT", "/contracts", "path"),
    # C [S1][S5]: cancel a contract; body (I): external_id_contract, cancellation_date, cancellation_reason
    "cancel_contract": Endpoint("POST", "/cancel_contracts"),
    # C [S1]: reactivate a cancelled contract; body (I): external_id_contract, reactivation_date
    "reactivate_contract": Endpoint("POST", "/contracts/reactivate_contract"),
    # C [S1]: delete by external id (no id in the path, so the id travels in the query as for updates, I)
    "delete_client": Endpoint("DELETE", "/clients", "query", "external_id_client"),
    "delete_contact": Endpoint("DELETE", "/contacts", "query", "external_id_contact"),
    "delete_contract": Endpoint("DELETE", "/contracts", "query", "external_id_contract"),
    # C [S2]: delete by CustomerX's numeric id in the path; used when the route by external id
    # answers 404 for a record CustomerX still holds (customerx/deletes.py)
    "delete_client_by_id": Endpoint("DELETE", "/clients", "path"),
    "delete_contact_by_id": Endpoint("DELETE", "/contacts", "path"),
    "delete_contract_by_id": Endpoint("DELETE", "/contracts", "path"),
    # LOW [S9]: the custom attributes defined in the account (`check` compares the mapping's with them)
    "list_custom_attributes": Endpoint("GET", "/custom_attributes"),
    "create_timeline": Endpoint("POST", "/timelines"),  # C2
    "list_timelines": Endpoint("GET", "/timelines"),  # I (S5 only): used to check an entry left in doubt
}


def overrides_of(settings: Any) -> dict[str, dict[str, Any]]:
    """A mapping's `customerx.endpoints` as `endpoints_with` takes them: only the fields it sets."""
    return {k: v.model_dump(exclude_none=True) for k, v in settings.endpoints.items()}


def endpoints_with(overrides: dict[str, dict[str, Any]] | None) -> dict[str, Endpoint]:
    table = dict(DEFAULT_ENDPOINTS)
    for name, fields in (overrides or {}).items():
        table[name] = replace(table[name], **fields)
    return table


@dataclass(frozen=True)
class Resource:
    """The operations of one CustomerX record type and the body field carrying our external id."""

    list: str
    create: str
    update: str
    update_by_id: str
    update_by_path_id: str
    delete: str
    external_id_field: str
    delete_by_id: str


RESOURCES: dict[str, Resource] = {
    entity: Resource(
        f"list_{singular}s",
        f"create_{singular}",
        f"update_{singular}",
        f"update_{singular}_by_id",
        f"update_{singular}_by_path_id",
        f"delete_{singular}",
        f"external_id_{singular}",
        f"delete_{singular}_by_id",
    )
    for entity, singular in (("clients", "client"), ("contacts", "contact"), ("contracts", "contract"))
}


# The list filters a new record can be looked up by: only those customerx-api.md lists. `own` is
# our external id (a record a killed run may have created), the others the mapping's identifiers.
# clients §8.1: `external_id_client` (also the UI's "Código") C [S4], `cnpj_cpf` LOW [S9];
# contacts §8.2: `email` LOW [S9]; contracts: none. A record with an identifier its resource cannot
# be filtered by is matched by the listing (load/adoption.py); and since even the listed filters
# are partly inferred, every answer is checked to carry the value asked for.
LOOKUP_PARAMS: dict[str, dict[str, str]] = {
    "clients": {"own": "external_id_client", "cnpj_cpf": "cnpj_cpf", "external_code": "external_id_client"},
    "contacts": {"email": "email"},
    "contracts": {},
}
