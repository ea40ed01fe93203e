"""Exit codes, and the mapping every command starts from (mapping-and-cli.md §2)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ploomes_cx.mapping import Mapping

EXIT_OK, EXIT_RECORDS_FAILED, EXIT_USAGE, EXIT_RUN_FAILED = 0, 1, 2, 3


def ready_mapping(ref: str, customerx: bool = True) -> Mapping | int:
    """The mapping `ref` names with its variables set, or the exit code after printing why: 2 for a
    mapping error, 3 for a missing variable (those of CustomerX only when `customerx`)."""
    from ploomes_cx.mapping import MappingError
    from ploomes_cx.mappings_folder import resolve_mapping

    try:
        m = resolve_mapping(ref)
    except MappingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return env_missing(m, customerx) or m


def env_missing(m: Mapping, customerx: bool = True) -> int:
    """3 after printing which variable the mapping names is not set, else 0."""
    from ploomes_cx.runner import MissingEnvironment, check_env

    try:
        check_env(m, customerx=customerx)
    except MissingEnvironment as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_RUN_FAILED
    return 0
