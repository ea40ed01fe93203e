"""`ploomes-cx sandbox`, `demo` and `ui`: the local servers, and the Dagster UI on the CLI's instance."""

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

from ploomes_cx.cli.codes import EXIT_OK, EXIT_USAGE
from ploomes_cx.cli.sync import mapping_and_windows, run_sync

if TYPE_CHECKING:  # imported lazily at run time so that `--help` answers at once
    from ploomes_cx.mapping import Mapping
    from ploomes_cx.sandbox import CustomerXSandbox, PloomesSandbox


def add_sandbox(sub: argparse._SubParsersAction) -> None:
    sandbox = sub.add_parser(
        "sandbox",
        help="run the local sandbox API servers in the foreground",
        description="Start the local sandbox Ploomes API (generated Brazilian CRM data) and print its URL and key.",
        epilog="example:\n  ploomes-cx sandbox --persons 100000 --seed 7",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _sandbox_options(sandbox)
    sandbox.set_defaults(func=cmd_sandbox)


def add_demo(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser(
        "demo",
        help="sandbox + a few synced windows + the Dagster UI, no credentials needed",
        description="Start the sandbox, sync a few windows of the sandbox mapping (./mappings/sandbox.yaml, else the "
        "built-in one) into $PLOOMES_CX_HOME, then "
        "start the Dagster webserver on the same instance and print the URL to open.",
        epilog="examples:\n  ploomes-cx demo\n  ploomes-cx demo --live\n  ploomes-cx demo --windows 2026-11-01..2026-11-05 --no-ui",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _sandbox_options(demo)
    demo.add_argument("--mapping", default="sandbox", help="mapping to sync (default: sandbox)")
    demo.add_argument("--windows", default="2026-11-01..2026-11-03", metavar="START[..END]")
    demo.add_argument(
        "--no-ui", action="store_true", help="stop after the sync instead of starting the webserver"
    )
    demo.add_argument("--ui-port", type=int, default=3000)
    demo.add_argument(
        "--live",
        action="store_true",
        help="then run `listen`, register the webhooks and win a deal in the sandbox: watch it arrive",
    )
    demo.set_defaults(func=cmd_demo)


def add_ui(sub: argparse._SubParsersAction) -> None:
    ui = sub.add_parser(
        "ui",
        help="the Dagster UI and daemon (schedules, backfills) on the CLI's instance",
        description="Run `dg dev` (webserver and daemon) on the instance under $PLOOMES_CX_HOME, for the mappings "
        "in $PLOOMES_CX_MAPPINGS or ./mappings, writing its "
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
    p.add_argument(
        "--reading",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="play another reading of what the API specs leave open, e.g. attributes=merge "
        "(repeatable; `ploomes-cx sandbox --readings` lists them)",
    )
    p.add_argument(
        "--readings", action="store_true", help="list the readings the sandboxes can play, and stop"
    )


# ---- sandbox ---------------------------------------------------------------------------------
def _start_sandboxes(args: argparse.Namespace) -> tuple[PloomesSandbox, CustomerXSandbox]:
    """Both sandbox servers; the CustomerX account is kept in `$PLOOMES_CX_HOME/sandbox/`."""
    from ploomes_cx.runtime.state import ensure_home
    from ploomes_cx.sandbox import CustomerXSandbox, PloomesDataset, PloomesSandbox
    from ploomes_cx.sandbox.readings import ReadingError, parse

    try:
        chosen = parse(args.reading)
    except ReadingError as exc:
        raise SystemExit(f"error: {exc}") from None
    state = ensure_home() / "sandbox"
    state.mkdir(exist_ok=True)
    try:
        ploomes = PloomesSandbox(
            PloomesDataset(persons=args.persons, seed=args.seed),
            host=args.host,
            port=args.ploomes_port,
            requests_per_minute=args.rpm,
            readings=chosen,
        )
        customerx = CustomerXSandbox(
            host=args.host,
            port=args.customerx_port,
            requests_per_minute=args.customerx_rpm,
            # a second's worth of burst: the demo runs the servers and the pipeline in one process,
            # where the GIL can bunch requests that the client spaced evenly
            burst=max(5, int(args.customerx_rpm / 60)),
            state_file=state / "customerx.json",
            readings=chosen,
        )
    except OSError as exc:
        raise SystemExit(
            f"error: cannot listen on {args.host} ({exc.strerror}); pass --ploomes-port / --customerx-port "
            "with free ports (0 picks one)"
        ) from None
    return ploomes.start(), customerx.start()


def _played(readings: dict[str, str]) -> str:
    from ploomes_cx.sandbox.readings import READINGS

    other = [f"{k}={v}" for k, v in readings.items() if v != READINGS[k].default]
    return "readings: " + (", ".join(other) if other else "the defaults (see --readings)")


def _print_readings() -> int:
    from ploomes_cx.sandbox.readings import READINGS

    for r in READINGS.values():
        print(f"{r.api:9} {r.name:24} {' | '.join(r.values)}   (default {r.default})")
        print(textwrap.indent(textwrap.fill(r.spec, 90), " " * 10))
    return EXIT_OK


def cmd_sandbox(args: argparse.Namespace) -> int:
    if args.readings:
        return _print_readings()
    ploomes, customerx = _start_sandboxes(args)
    print(
        textwrap.dedent(f"""\
        Ploomes sandbox:    {ploomes.url}   User-Key: {ploomes.user_key}
        CustomerX sandbox:  {customerx.url}   token: {customerx.token}
        ({args.persons} persons, seed {args.seed}; {args.rpm:g} and {args.customerx_rpm:g} requests/min)
        {_played(ploomes.readings | customerx.readings)}

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
    from ploomes_cx.cli.demo_live import show_live
    from ploomes_cx.runtime.state import ensure_dagster_home, ensure_home
    from ploomes_cx.sandbox import sandbox_env

    resolved = mapping_and_windows(args.mapping, args.windows)
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
    code = run_sync(m, keys, dry_run=False)
    listener = show_live(m, ploomes, customerx, not args.no_ui) if code == EXIT_OK and args.live else None
    try:
        if code != EXIT_OK or args.no_ui:
            return code
        print(
            f"\nasset groups {m.name}_raw, {m.name}_staging, {m.name}_load, and {m.name}_live for webhooks. "
            "Ctrl-C stops the UI and the sandbox."
        )
        return _run_ui(home, dagster_home, "127.0.0.1", args.ui_port, _shown_folder(m))
    finally:
        if listener is not None:
            listener.stop()
        ploomes.stop()
        customerx.stop()


# ---- ui --------------------------------------------------------------------------------------
def cmd_ui(args: argparse.Namespace) -> int:
    from ploomes_cx.mappings_folder import mappings_dir
    from ploomes_cx.runtime.state import ensure_dagster_home, ensure_home

    home = ensure_home()
    return _run_ui(home, ensure_dagster_home(), args.host, args.port, mappings_dir())


def _shown_folder(m: Mapping) -> Path:
    """The folder whose mappings the demo's UI shows: the user's, where the built-in mapping's
    decisions go too, unless the demo was given a mapping file elsewhere."""
    from ploomes_cx.mappings_folder import built_in, mappings_dir

    return mappings_dir() if built_in(m.source_path) else Path(m.source_path).resolve().parent


def _run_ui(home: Path, dagster_home: Path, host: str, port: int, mappings: Path) -> int:
    """`dg dev` (webserver + daemon) on the instance the CLI uses, with its dagster.yaml written.

    Starting it by hand on a fresh DAGSTER_HOME would run without the pool and run queue limits
    that runtime/state.py writes; this entry point always has them. It names the code location's
    module (`-m`), so it runs the same from a clone and from an installed wheel, in the user's
    current directory, with `$PLOOMES_CX_MAPPINGS` set to the folder whose mappings it shows, and the
    built-in mappings that folder does not shadow, as the CLI finds them.
    """
    from ploomes_cx.mappings_folder import WITH_BUILT_IN

    bin_dir = Path(sys.executable).parent
    dg_cli = shutil.which("dg", path=str(bin_dir)) or "dg"
    env = {
        **os.environ,
        "PLOOMES_CX_HOME": str(home),
        "PLOOMES_CX_MAPPINGS": str(mappings.resolve()),
        WITH_BUILT_IN: "1",
        "DAGSTER_HOME": str(dagster_home),
        "VIRTUAL_ENV": str(bin_dir.parent),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    cmd = [dg_cli, "dev", "-m", "ploomes_cx.definitions", "--host", host, "--port", str(port)]
    print(
        f"starting the Dagster UI and daemon: open http://{host}:{port}  (instance {dagster_home}, "
        f"mappings in {mappings.resolve()})",
        flush=True,
    )
    proc = subprocess.Popen(cmd, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        return EXIT_OK
