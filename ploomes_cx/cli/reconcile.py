"""`ploomes-cx reconcile`: apply Ploomes deletes to CustomerX (mapping-and-cli.md §4.2)."""

from __future__ import annotations

import argparse
import sys
import textwrap

from ploomes_cx.cli.codes import EXIT_OK, EXIT_RECORDS_FAILED, EXIT_RUN_FAILED, EXIT_USAGE, ready_mapping


def add_reconcile(sub: argparse._SubParsersAction) -> None:
    reconcile = sub.add_parser(
        "reconcile",
        help="find records CustomerX holds from us whose Ploomes record is gone, and apply deletes.policy",
        description="List the Ids of every Ploomes set the mapping uses ($select=Id) and Deals/GetDeletedDeals, "
        "compare them with what CustomerX holds from us, and apply the mapping's deletes.policy (ignore, cancel, "
        "delete). Above deletes.max_share of an entity nothing is removed and the exit code is 1. Runs the "
        "mapping's `reconcile` asset through Dagster, so the run shows in the UI.",
        epilog=textwrap.dedent("""\
            examples:
              ploomes-cx reconcile sandbox --dry-run     # what would be cancelled or deleted, and the cost
              ploomes-cx reconcile mappings/acme.yaml
            """),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    reconcile.add_argument(
        "mapping",
        metavar="MAPPING",
        help="path to a mapping YAML file, or the name of one in $PLOOMES_CX_MAPPINGS, else ./mappings",
    )
    reconcile.add_argument(
        "--dry-run",
        action="store_true",
        help="write nothing (CustomerX or local state); print what would change",
    )
    reconcile.set_defaults(func=cmd_reconcile)


def cmd_reconcile(args: argparse.Namespace) -> int:
    from ploomes_cx.metadata import ErrorKind
    from ploomes_cx.runner import InstanceError, run_reconcile

    m = ready_mapping(args.mapping)
    if isinstance(m, int):
        return m
    mode = " (dry run: nothing is written)" if args.dry_run else ""
    print(f"reconciling {m.name} ({m.source_path}), deletes.policy {m.deletes.policy}{mode}", flush=True)
    try:
        outcome = run_reconcile(m, args.dry_run)
    except InstanceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_RUN_FAILED
    if outcome.report:
        print(outcome.report)
    for line in outcome.errors:
        print(f"error: {line}", file=sys.stderr)
    if not outcome.success:
        if ErrorKind.GUARD in outcome.error_kinds:
            return EXIT_RECORDS_FAILED
        return EXIT_USAGE if ErrorKind.MAPPING in outcome.error_kinds else EXIT_RUN_FAILED
    if outcome.failed:
        print(
            f"{outcome.failed} record(s) were refused by CustomerX or failed after retries; they are in "
            f"{m.name}.ledger and the next reconcile tries them again.",
            file=sys.stderr,
        )
        return EXIT_RECORDS_FAILED
    return EXIT_OK
