"""`ploomes-cx`: the command line of the public contract (shared/specs/mapping-and-cli.md §2).

Exit codes: 0 all good (or nothing to do), 1 some records failed or were refused by CustomerX,
2 usage or mapping error, 3 the run failed (API unreachable, credentials missing or refused, bug).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported lazily at run time so that `--help` answers at once
    from ploomes_cx.mapping import Mapping
    from ploomes_cx.sandbox import CustomerXSandbox, PloomesSandbox

EXIT_OK, EXIT_RECORDS_FAILED, EXIT_USAGE, EXIT_RUN_FAILED = 0, 1, 2, 3
PROJECT_ROOT = Path(__file__).resolve().parent.parent

EXAMPLES = """\
examples:
  ploomes-cx sandbox                                  # local Ploomes API on 127.0.0.1:8765
  ploomes-cx sync sandbox --window 2026-11-01         # one daily window of mappings/sandbox.yaml
  ploomes-cx sync mappings/acme.yaml --window 2026-03-01..2026-03-07 --dry-run
  ploomes-cx demo                                     # sandbox + 3 windows + the Dagster UI
  ploomes-cx ui                                       # the UI and daemon on the same instance

exit codes: 0 ok, 1 some records failed or were refused by CustomerX (retried next sync),
            2 usage or mapping error, 3 the run failed (API unreachable, credentials, bug)
"""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_RUN_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ploomes-cx",
        description="Keep a CustomerX account in sync with a Ploomes CRM account, one mapping file per integration.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_sync, _add_sandbox, _add_demo, _add_ui):
        add(sub)
    return parser


def _add_sync(sub: argparse._SubParsersAction) -> None:
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
        "mapping", metavar="MAPPING", help="path to a mapping YAML file, or the name of one in mappings/"
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


def _add_sandbox(sub: argparse._SubParsersAction) -> None:
    sandbox = sub.add_parser(
        "sandbox",
        help="run the local sandbox API servers in the foreground",
        description="Start the local sandbox Ploomes API (generated Brazilian CRM data) and print its URL and key.",
        epilog="example:\n  ploomes-cx sandbox --persons 100000 --seed 7",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _sandbox_options(sandbox)
    sandbox.set_defaults(func=cmd_sandbox)


def _add_demo(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser(
        "demo",
        help="sandbox + a few synced windows + the Dagster UI, no credentials needed",
        description="Start the sandbox, sync a few windows of mappings/sandbox.yaml into $PLOOMES_CX_HOME, then "
        "start the Dagster webserver on the same instance and print the URL to open.",
        epilog="examples:\n  ploomes-cx demo\n  ploomes-cx demo --windows 2026-11-01..2026-11-05 --no-ui",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _sandbox_options(demo)
    demo.add_argument("--mapping", default="sandbox", help="mapping to sync (default: sandbox)")
    demo.add_argument("--windows", default="2026-11-01..2026-11-03", metavar="START[..END]")
    demo.add_argument(
        "--no-ui", action="store_true", help="stop after the sync instead of starting the webserver"
    )
    demo.add_argument("--ui-port", type=int, default=3000)
    demo.set_defaults(func=cmd_demo)


def _add_ui(sub: argparse._SubParsersAction) -> None:
    ui = sub.add_parser(
        "ui",
        help="the Dagster UI and daemon (schedules, backfills) on the CLI's instance",
        description="Run `dg dev` (webserver and daemon) on the instance under $PLOOMES_CX_HOME, writing its "
        "dagster.yaml (concurrency pools, run queue limits) first when ploomes-cx owns it. Credentials come "
        "from the environment, as for sync.",
        epilog="examples:\n  ploomes-cx ui\n  ploomes-cx ui --host 0.0.0.0 --port 3001",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=cmd_ui)


def _sandbox_options(p: argparse.ArgumentParser) -> None:
    from ploomes_cx.sandbox import DEFAULT_CUSTOMERX_PORT, DEFAULT_PLOOMES_PORT

    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--ploomes-port", type=int, default=DEFAULT_PLOOMES_PORT, help="0 picks a free port")
    p.add_argument("--customerx-port", type=int, default=DEFAULT_CUSTOMERX_PORT, help="0 picks a free port")
    p.add_argument(
        "--persons", type=int, default=2000, help="scale: Ploomes persons to generate (default 2000)"
    )
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--rpm", type=float, default=120, help="Ploomes rate limit the sandbox enforces per key")
    p.add_argument(
        "--customerx-rpm",
        type=float,
        default=3000,
        help="CustomerX rate limit the sandbox enforces (default 3000, what mappings/sandbox.yaml paces to; "
        "a real account allows 60)",
    )


# ---- sync ------------------------------------------------------------------------------------
def _mapping_and_windows(mapping_ref: str, window_spec: str) -> tuple[Mapping, list[str]] | None:
    """The mapping and its partition keys, or None after printing why (exit code 2)."""
    from ploomes_cx.mapping import MappingError, resolve_mapping
    from ploomes_cx.partitions import WindowError, window_keys

    try:
        m = resolve_mapping(mapping_ref)
        return m, window_keys(m, window_spec)
    except (MappingError, WindowError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def cmd_sync(args: argparse.Namespace) -> int:
    from ploomes_cx.runner import MissingEnvironment, check_env

    resolved = _mapping_and_windows(args.mapping, args.window)
    if resolved is None:
        return EXIT_USAGE
    m, keys = resolved
    try:
        check_env(m)
    except MissingEnvironment as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_RUN_FAILED
    return _sync(m, keys, dry_run=args.dry_run, show_steps=not args.quiet)


def _sync(m, keys: list[str], dry_run: bool, show_steps: bool = True) -> int:
    from ploomes_cx.runner import InstanceError, run_windows
    from ploomes_cx.summary import WindowSummary

    mode = " (dry run: nothing is written to CustomerX)" if dry_run else ""
    print(
        f"syncing {m.name} ({m.source_path}): {len(keys)} window(s) {keys[0]} .. {keys[-1]}{mode}", flush=True
    )

    def progress(w: WindowSummary) -> None:
        status = "ok" if w.success else "FAILED"
        print(f"  window {w.key}: {status} in {w.seconds:.1f}s, {w.extracted} records extracted", flush=True)
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


def _report(m, keys: list[str], results: list, dry_run: bool) -> int:
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
        skipped = len(keys) - len(results)
        print(
            f"\nwindow {failed[0].key} failed; {skipped} later window(s) not run, so none loads out of order.",
            file=sys.stderr,
        )
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
    return EXIT_OK


# ---- sandbox ---------------------------------------------------------------------------------
def _start_sandboxes(args: argparse.Namespace) -> tuple[PloomesSandbox, CustomerXSandbox]:
    """Both sandbox servers; the CustomerX account is kept in `$PLOOMES_CX_HOME/sandbox/`."""
    from ploomes_cx.runtime.state import ensure_home
    from ploomes_cx.sandbox import CustomerXSandbox, PloomesDataset, PloomesSandbox

    state = ensure_home() / "sandbox"
    state.mkdir(exist_ok=True)
    try:
        ploomes = PloomesSandbox(
            PloomesDataset(persons=args.persons, seed=args.seed),
            host=args.host,
            port=args.ploomes_port,
            requests_per_minute=args.rpm,
        )
        customerx = CustomerXSandbox(
            host=args.host,
            port=args.customerx_port,
            requests_per_minute=args.customerx_rpm,
            # a second's worth of burst: the demo runs the servers and the pipeline in one process,
            # where the GIL can bunch requests that the client spaced evenly
            burst=max(5, int(args.customerx_rpm / 60)),
            state_file=state / "customerx.json",
        )
    except OSError as exc:
        raise SystemExit(
            f"error: cannot listen on {args.host} ({exc.strerror}); pass --ploomes-port / --customerx-port "
            "with free ports (0 picks one)"
        ) from None
    return ploomes.start(), customerx.start()


def cmd_sandbox(args: argparse.Namespace) -> int:
    ploomes, customerx = _start_sandboxes(args)
    print(
        textwrap.dedent(f"""\
        Ploomes sandbox:    {ploomes.url}   User-Key: {ploomes.user_key}
        CustomerX sandbox:  {customerx.url}   token: {customerx.token}
        ({args.persons} persons, seed {args.seed}; {args.rpm:g} and {args.customerx_rpm:g} requests/min)

        In another shell:
          export PLOOMES_BASE_URL={ploomes.url}
          export PLOOMES_USER_KEY={ploomes.user_key}
          export CUSTOMERX_BASE_URL={customerx.url}
          export CUSTOMERX_TOKEN={customerx.token}
          ploomes-cx sync sandbox --window 2026-11-01

        Ctrl-C stops them."""),
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        ploomes.stop()
        customerx.stop()
    return EXIT_OK


# ---- demo ------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from ploomes_cx.runtime.state import ensure_dagster_home, ensure_home
    from ploomes_cx.sandbox import sandbox_env

    resolved = _mapping_and_windows(args.mapping, args.windows)
    if resolved is None:
        return EXIT_USAGE
    m, keys = resolved
    ploomes, customerx = _start_sandboxes(args)
    os.environ.update(sandbox_env(m, ploomes, customerx))
    home = ensure_home()
    dagster_home = ensure_dagster_home()
    print(
        f"sandbox Ploomes API at {ploomes.url}, CustomerX API at {customerx.url}; state in {home}", flush=True
    )
    code = _sync(m, keys, dry_run=False)
    if code != EXIT_OK or args.no_ui:
        ploomes.stop()
        customerx.stop()
        return code
    print(
        f"\nasset groups {m.name}_raw, {m.name}_staging, {m.name}_load. Ctrl-C stops the UI and the sandbox."
    )
    try:
        return _run_ui(home, dagster_home, "127.0.0.1", args.ui_port)
    finally:
        ploomes.stop()
        customerx.stop()


# ---- ui --------------------------------------------------------------------------------------
def cmd_ui(args: argparse.Namespace) -> int:
    from ploomes_cx.runtime.state import ensure_dagster_home, ensure_home

    home = ensure_home()
    return _run_ui(home, ensure_dagster_home(), args.host, args.port)


def _run_ui(home: Path, dagster_home: Path, host: str, port: int) -> int:
    """`dg dev` (webserver + daemon) on the instance the CLI uses, with its dagster.yaml written.

    Starting it by hand on a fresh DAGSTER_HOME would run without the pool and run queue limits
    that runtime/state.py writes; this entry point always has them. `dg dev` loads the project's
    components (`ploomes_cx/defs/`) in this environment, which it is told by `VIRTUAL_ENV`.
    """
    bin_dir = Path(sys.executable).parent
    dg_cli = shutil.which("dg", path=str(bin_dir)) or "dg"
    env = {
        **os.environ,
        "PLOOMES_CX_HOME": str(home),
        "DAGSTER_HOME": str(dagster_home),
        "VIRTUAL_ENV": str(bin_dir.parent),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    cmd = [dg_cli, "dev", "--host", host, "--port", str(port)]
    print(
        f"starting the Dagster UI and daemon: open http://{host}:{port}  (instance {dagster_home})",
        flush=True,
    )
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
