"""`ploomes-cx sync`: materialize a mapping's windows through Dagster and print their table."""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import TYPE_CHECKING

from ploomes_cx.cli.codes import EXIT_OK, EXIT_RECORDS_FAILED, EXIT_RUN_FAILED, EXIT_USAGE, env_missing

if TYPE_CHECKING:  # imported lazily at run time so that `--help` answers at once
    from ploomes_cx.mapping import Mapping


def add_sync(sub: argparse._SubParsersAction) -> None:
    sync = sub.add_parser(
        "sync",
        help="materialize a mapping's assets for one or more sync windows",
        description="Materialize the mapping's whole asset graph for windows START..END (inclusive), oldest "
        "first, through Dagster on the instance under $PLOOMES_CX_HOME, so the runs show in the UI.",
        epilog=textwrap.dedent("""\
            examples:
              ploomes-cx sync sandbox --window 2026-11-01
              ploomes-cx sync sandbox --window 2026-11-01..2026-11-03
              ploomes-cx sync mappings/hourly.yaml --window 2026-11-01-14:00..2026-11-01-18:00
              ploomes-cx sync mappings/hourly.yaml --window 2026-11-01     # all 24 hours of that day
            """),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sync.add_argument(
        "mapping",
        metavar="MAPPING",
        help="path to a mapping YAML file, or the name of one in $PLOOMES_CX_MAPPINGS, else ./mappings",
    )
    sync.add_argument(
        "--window",
        required=True,
        metavar="START[..END]",
        help="partition key(s) as Dagster shows them: 2026-03-01 (daily) or 2026-03-01-14:00 (hourly)",
    )
    sync.add_argument(
        "--dry-run", action="store_true", help="write nothing to CustomerX; print what would change"
    )
    sync.add_argument(
        "--quiet",
        action="store_true",
        help="no per-step progress lines, only one line per window and the summary",
    )
    sync.set_defaults(func=cmd_sync)


# ---- sync ------------------------------------------------------------------------------------
def mapping_and_windows(mapping_ref: str, window_spec: str) -> tuple[Mapping, list[str]] | None:
    """The mapping and its partition keys, or None after printing why (exit code 2)."""
    from ploomes_cx.decisions import load_decisions
    from ploomes_cx.mapping import MappingError
    from ploomes_cx.mappings_folder import resolve_mapping
    from ploomes_cx.partitions import WindowError, window_keys

    try:
        m = resolve_mapping(mapping_ref)
        load_decisions(m)  # checked before any run, like the mapping (a DecisionsError is a MappingError)
        return m, window_keys(m, window_spec)
    except (MappingError, WindowError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def cmd_sync(args: argparse.Namespace) -> int:
    resolved = mapping_and_windows(args.mapping, args.window)
    if resolved is None:
        return EXIT_USAGE
    m, keys = resolved
    return env_missing(m) or run_sync(m, keys, dry_run=args.dry_run, show_steps=not args.quiet)


def run_sync(m: Mapping, keys: list[str], dry_run: bool, show_steps: bool = True) -> int:
    from ploomes_cx.runner import InstanceError, run_windows
    from ploomes_cx.summary import WindowSummary

    mode = " (dry run: nothing is written to CustomerX)" if dry_run else ""
    print(
        f"syncing {m.name} ({m.source_path}): {len(keys)} window(s) {keys[0]} .. {keys[-1]}{mode}", flush=True
    )

    def progress(w: WindowSummary) -> None:
        status = "ok" if w.success else "FAILED"
        staging = f"; staging {w.staging}" if w.staging else ""
        print(
            f"  window {w.key}: {status} in {w.seconds:.1f}s, {w.extracted} records extracted{staging}",
            flush=True,
        )
        for line in w.errors:
            print(f"    {line}", file=sys.stderr)

    def step_line(line: str) -> None:
        if show_steps:
            print(line, flush=True)

    try:
        results = run_windows(
            m,
            keys,
            on_window=progress,
            tags={"ploomes_cx/dry_run": str(dry_run).lower()},
            dry_run=dry_run,
            on_progress=step_line,
            on_wait=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except InstanceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_RUN_FAILED
    return _report(m, keys, results, dry_run)


def _report(m: Mapping, keys: list[str], results: list, dry_run: bool) -> int:
    """The sync's table, the checks needing attention, and the exit code its windows earned."""
    from ploomes_cx.metadata import ErrorKind
    from ploomes_cx.plan import Plan
    from ploomes_cx.summary import SyncTotals

    totals = SyncTotals(Plan.of(m))
    for w in results:
        totals.add(w)
    print()
    print("\n".join(totals.lines()))
    if results and results[-1].checks:
        print("\nchecks needing attention (see the asset's Checks tab in the UI):")
        for line in results[-1].checks:
            print(f"  {line}")
    failed = [w for w in results if not w.success]
    if failed:
        # a result covers a chunk of windows; the next chunk may have been extracted, never loaded
        skipped = len(keys) - sum(w.windows for w in results)
        later = f"; {skipped} later window(s) not loaded, so none loads out of order" if skipped else ""
        print(f"\nwindow {failed[0].key} failed{later}.", file=sys.stderr)
        return EXIT_USAGE if ErrorKind.MAPPING in failed[0].error_kinds else EXIT_RUN_FAILED
    refused = sum(w.records_failed for w in results)
    if refused:
        print(
            f"\n{refused} record(s) failed after retries or were refused by CustomerX; they are in "
            f"{m.name}.ledger and will be retried on the next sync.",
            file=sys.stderr,
        )
        return EXIT_RECORDS_FAILED
    if dry_run:
        print("\ndry run: nothing was written to CustomerX (see the load assets' metadata for the changes).")
        print(_eta(m, totals.writes(), sum(w.seconds for w in results)))
    return EXIT_OK


def _eta(m: Mapping, writes: int, seconds: float) -> str:
    """How long the real run takes: the same reads as this dry run, plus its writes at the
    CustomerX pace the mapping sets (each write is one request)."""
    rpm = m.customerx.requests_per_minute
    total = seconds + writes * 60 / rpm
    return (
        f"ETA of the real run: about {total / 60:.1f} min = this dry run's {seconds:.0f}s of reading and staging "
        f"+ {writes} CustomerX write(s) at {rpm} requests/min (customerx.requests_per_minute)."
    )
