"""`ploomes-cx check`: one line per check, each with what to do when it fails; writes nothing.

After the credentials and fields, one `probe` line per query form the sync may have to choose
(`connect/probes.py`), naming the form it will use; `--save-probes` stores those choices in the
state folder, the only thing `check` ever writes, and only when asked.

The checks, in order: the environment variables the mapping names, one cheap call per API
(`GET /Account?$top=1&$select=Id`, C [S1]; a CustomerX client list of one), every mapped custom
field and the `external_code_field` against `/Fields`. Clients are built with few retries and no
pacing file: a check answers in seconds and leaves no state behind.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

from ploomes_cx.connect.account import customerx_api, ploomes_api
from ploomes_cx.connect.probes import customerx_probes, ploomes_probes
from ploomes_cx.customerx.client import CustomerXApi, CustomerXAuthError, CustomerXError, CustomerXRejected
from ploomes_cx.mapping import Mapping
from ploomes_cx.ploomes.catalogue import check_custom_fields
from ploomes_cx.ploomes.client import CallStats, PloomesAuthError, PloomesError

OK, FAIL, SKIP = "ok", "FAIL", "skip"
# exit codes of the contract: a mapping error, a credential missing or refused / an API unreachable
MAPPING_ERROR, ACCESS_ERROR = 2, 3
ATTEMPTS, TIMEOUT = 2, 20.0


@dataclass(frozen=True)
class Check:
    status: str
    what: str
    detail: str
    fix: str = ""
    code: int = 0  # the exit code this line earns

    def line(self) -> str:
        text = f"  {self.status:<4}  {self.what}: {self.detail}"
        return text + (f"\n        -> {self.fix}" if self.fix else "")


def exit_code(checks: list[Check]) -> int:
    """3 when an API could not be reached with the mapping's credentials, else 2 for a mapping
    problem, else 0."""
    codes = {c.code for c in checks}
    return ACCESS_ERROR if ACCESS_ERROR in codes else MAPPING_ERROR if MAPPING_ERROR in codes else 0


def run_checks(m: Mapping, save_probes: bool = False) -> Iterator[Check]:
    missing = [n for n in _variables(m) if not os.environ.get(n)]
    if missing:
        yield Check(
            FAIL,
            "environment",
            f"{', '.join('$' + n for n in missing)} not set",
            "export them (names come from the mapping's ploomes: and customerx: keys); see README "
            '"Connect your account"',
            ACCESS_ERROR,
        )
    else:
        yield Check(OK, "environment", f"{', '.join('$' + n for n in _variables(m))} are set")
    for api, names, check in (
        ("Ploomes", (m.ploomes.base_url_env, m.ploomes.user_key_env), lambda: _ploomes(m, save_probes)),
        ("CustomerX", (m.customerx.base_url_env, m.customerx.token_env), lambda: _customerx(m)),
    ):
        unset = [f"${n}" for n in names if n in missing]
        if unset:  # said, not left out: a missing line reads as if that API had been checked
            yield Check(SKIP, api, f"not checked: {' and '.join(unset)} not set")
        else:
            yield from check()


def _variables(m: Mapping) -> list[str]:
    return [m.ploomes.base_url_env, m.ploomes.user_key_env, m.customerx.base_url_env, m.customerx.token_env]


def _ploomes(m: Mapping, save_probes: bool) -> Iterator[Check]:
    with ploomes_api(m, ATTEMPTS, TIMEOUT) as api:
        started, stats = time.monotonic(), CallStats()
        try:
            api.get("/Account", {"$top": "1", "$select": "Id"}, stats)
        except PloomesError as exc:
            yield _refused("Ploomes", exc, m.ploomes.user_key_env, isinstance(exc, PloomesAuthError))
            return
        yield Check(
            OK,
            "Ploomes",
            f"the key in ${m.ploomes.user_key_env} is accepted (GET /Account, {time.monotonic() - started:.2f}s)",
        )
        try:
            catalogue = api.fields(stats)
        except PloomesError as exc:
            yield _refused("Ploomes /Fields", exc, m.ploomes.user_key_env, isinstance(exc, PloomesAuthError))
            return
        yield from _fields(m, catalogue)
        try:
            for what, detail, ok in ploomes_probes(m, api, save_probes):
                yield Check(OK if ok else SKIP, what, detail)
        except PloomesError as exc:
            yield _refused("Ploomes probes", exc, m.ploomes.user_key_env, isinstance(exc, PloomesAuthError))


def _fields(m: Mapping, catalogue: list[dict]) -> Iterator[Check]:
    problems = check_custom_fields(m, catalogue)
    mapped = sum(len(getattr(m.custom_fields, e)) for e in ("clients", "contacts", "contracts"))
    if not problems:
        yield Check(
            OK,
            "custom fields",
            f"{mapped} mapped custom field(s) and external_code_field {m.external_code_field!r} found among "
            f"the account's {len(catalogue)} fields",
        )
        return
    listing = problems.pop() if problems[-1].startswith("fields of this account") else ""
    for problem in problems:
        where, _, what = problem.partition(": ")
        yield Check(
            FAIL,
            where,
            what,
            f"run `ploomes-cx fields {m.source_path}` and use a key from its list"
            + ("" if not listing else f" ({listing[:160]}...)"),
            MAPPING_ERROR,
        )


def _customerx(m: Mapping) -> Iterator[Check]:
    started = time.monotonic()
    with customerx_api(m, ATTEMPTS, TIMEOUT) as api:
        try:
            api.call("list_clients", params={"page": "1", "per_page": "1"})
        except CustomerXError as exc:
            yield _refused("CustomerX", exc, m.customerx.token_env, isinstance(exc, CustomerXAuthError))
            return
        yield Check(
            OK,
            "CustomerX",
            f"the token in ${m.customerx.token_env} is accepted (GET /clients, {time.monotonic() - started:.2f}s)",
        )
        yield from _attributes(m, api)
        for what, detail, ok in customerx_probes(api):
            yield Check(OK if ok else SKIP, what, detail)


def _attributes(m: Mapping, api: CustomerXApi) -> Iterator[Check]:
    """The mapping's CustomerX attribute names against those the account defines, where its API lists
    them (LOW [S9]; whether attributes must exist before a write is unknown, I: yes)."""
    named = [
        (f"custom_fields.{entity}[{n}].customerx", cf.customerx)
        for entity in ("clients", "contacts", "contracts")
        for n, cf in enumerate(getattr(m.custom_fields, entity))
    ]
    if not named:
        return
    try:
        rows, _ = api.call("list_custom_attributes")
    except CustomerXRejected as exc:
        yield Check(
            SKIP,
            "CustomerX custom attributes",
            f"this account's API does not list them (GET /custom_attributes: HTTP {exc.status}); not checked",
            "make sure each `customerx:` name of the mapping exists in CustomerX (Configurações → Campos "
            "personalizados) before the first sync",
        )
        return
    defined = {
        str(r.get(k)) for r in rows or [] if isinstance(r, dict) for k in ("label", "name", "external_id")
    }
    for where, name in named:
        if name not in defined:
            yield Check(
                FAIL,
                where,
                f"{name!r} is not a custom attribute of this CustomerX account",
                f"create it in CustomerX or use one of: {', '.join(sorted(defined - {'None'})[:20])}",
                MAPPING_ERROR,
            )
    if all(name in defined for _, name in named):
        yield Check(
            OK, "CustomerX custom attributes", f"all {len(named)} mapped attribute(s) exist in the account"
        )


def _refused(api: str, exc: Exception, variable: str, auth: bool) -> Check:
    if auth:
        fix = f"set ${variable} to a valid credential (README: Connect your account)"
    else:
        fix = "check the base URL variable and that the API is reachable from this machine"
    return Check(FAIL, api, str(exc), fix, ACCESS_ERROR)
