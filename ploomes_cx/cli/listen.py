"""`ploomes-cx listen MAPPING [--host] [--port]`: receive Ploomes webhooks and keep CustomerX in
sync by itself (mapping-and-cli.md §4.3)."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import socket
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ploomes_cx.cli.codes import EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, ready_mapping
from ploomes_cx.live.limits import Limits

if TYPE_CHECKING:
    from ploomes_cx.mapping import Mapping


def add_listen(sub: argparse._SubParsersAction) -> None:
    listen = sub.add_parser(
        "listen",
        help="receive Ploomes webhooks and apply each change to CustomerX within seconds",
        description="Serve POST /ploomes/webhook (and GET /health). A call without the key held by the variable "
        "the mapping names in webhooks.validation_key_env gets 401 and is stored nowhere; a valid one is stored "
        "durably under $PLOOMES_CX_HOME/live/ and answered 200. Stored events are processed in small batches "
        "as runs of the job <name>_live on the Dagster instance: each record re-read from Ploomes by Id, then "
        "staged and loaded like a window. An event whose run fails is retried with backoff, never dropped; "
        "stopping listen (Ctrl-C, SIGTERM) lets the run under way finish, and events stored while it was down "
        "are processed when it starts again. Put it behind a TLS reverse proxy for Ploomes to reach it.",
        epilog=textwrap.dedent("""\
            examples:
              ploomes-cx listen acme                         # 127.0.0.1:8787, behind a reverse proxy
              ploomes-cx listen acme --host 0.0.0.0 --port 9000

            exit codes: 0 stopped, 2 usage or mapping error (or another listen of this mapping is running),
                        3 a variable missing, the port taken, or the Dagster instance unreachable
            """),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    listen.add_argument(
        "mapping",
        metavar="MAPPING",
        help="path to a mapping YAML file, or the name of one in $PLOOMES_CX_MAPPINGS, else ./mappings",
    )
    listen.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    listen.add_argument(
        "--port", type=int, default=8787, help="port to listen on (default 8787; 0 picks a free one)"
    )
    listen.add_argument(
        "--batch",
        type=_positive(int),
        default=50,
        help="most events one live run processes (default 50; a record's events go together)",
    )
    _add_limits(listen)
    listen.add_argument(
        "--receive-only",
        action="store_true",
        help="store events and leave processing to the daemon's <name>_live_sensor (start that sensor)",
    )
    listen.set_defaults(func=cmd_listen)


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
        return value

    return parse


def _add_limits(listen: argparse.ArgumentParser) -> None:
    """What shields the receiver from slow and idle connections (issue 28; see live/server.py)."""
    limits = Limits()
    listen.add_argument(
        "--header-timeout",
        type=_positive(float),
        default=limits.header_timeout,
        metavar="SECONDS",
        help="close a connection whose request headers are not complete this long after it opened "
        f"or after its last answer (default {limits.header_timeout:g})",
    )
    listen.add_argument(
        "--body-timeout",
        type=_positive(float),
        default=limits.body_timeout,
        metavar="SECONDS",
        help=f"close a connection whose body is not complete this long after its headers (default {limits.body_timeout:g})",
    )
    listen.add_argument(
        "--max-connections",
        type=_positive(int),
        default=limits.max_connections,
        metavar="N",
        help=f"close new connections while N are open (default {limits.max_connections})",
    )


@contextlib.contextmanager
def _only_listener(path: Path) -> Iterator[bool]:
    """Whether this is the only `listen` of the mapping (the lock is held while it runs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def cmd_listen(args: argparse.Namespace) -> int:
    m = ready_mapping(args.mapping)
    if isinstance(m, int):
        return m
    key_env = m.webhooks.validation_key_env
    key = os.environ.get(key_env, "")
    if not key:
        print(
            f"error: ${key_env} is not set; it holds the ValidationKey given to `ploomes-cx webhooks register`",
            file=sys.stderr,
        )
        return EXIT_RUN_FAILED
    from ploomes_cx.runtime.state import ensure_home

    with _only_listener(ensure_home() / "locks" / f"listen-{m.name}.lock") as alone:
        if not alone:
            print(
                f"error: another `ploomes-cx listen {m.name}` is running on this state folder",
                file=sys.stderr,
            )
            return EXIT_USAGE
        try:
            sock = socket.create_server((args.host, args.port))
        except OSError as exc:
            print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_RUN_FAILED
        limits = Limits(args.header_timeout, args.body_timeout, args.max_connections)
        with sock:
            return _serve(m, key, sock, args.batch, args.receive_only, limits)


def _serve(m: Mapping, key: str, sock: socket.socket, batch: int, receive_only: bool, limits: Limits) -> int:
    from ploomes_cx.live.events import EventStore, store_path
    from ploomes_cx.live.receiver import build_app
    from ploomes_cx.live.server import make_server
    from ploomes_cx.live.worker import Batch, LiveWorker, events_label
    from ploomes_cx.metadata import Count
    from ploomes_cx.runner import InstanceError, open_instance
    from ploomes_cx.runtime.state import ensure_dagster_home, home

    ensure_dagster_home()
    try:
        instance = open_instance()
    except InstanceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_RUN_FAILED

    def report(b: Batch) -> None:
        o = b.outcome
        done = "done" if o.success else f"FAILED, retried with backoff: {'; '.join(o.errors)[:300]}"
        kinds = (Count.CREATED, Count.UPDATED, Count.FAILED)
        writes = [f"{e} {c[k]} {k.value}" for e, c in o.counts.items() for k in kinds if c.get(k)]
        print(
            f"  events {events_label(b.events)} ({len(b.events)}): {done} in {o.seconds:.1f} s, "
            f"{max(b.received_to_done):.1f} s after the first arrived (run {o.run_id}); "
            f"CustomerX: {', '.join(writes) or 'no write'}",
            flush=True,
        )

    with EventStore(store_path(home(), m.name)) as store:
        worker = LiveWorker(m, store, instance, batch=batch, on_batch=report)
        app = build_app(
            store,
            key,
            m.webhooks.key_echo,
            (lambda: None) if receive_only else worker.wake,
            lambda: {"processing": "sensor" if receive_only else worker.alive},
        )
        server = make_server(app, limits)
        host, port = sock.getsockname()[:2]
        print(
            f"listening for Ploomes webhooks of mapping {m.name} on http://{host}:{port}/ploomes/webhook "
            f"(health: /health); events are stored in {store.path}",
            flush=True,
        )
        if receive_only:
            print(f"receive only: start the sensor {m.name}_live_sensor where the daemon runs", flush=True)
        else:
            worker.start()
        try:
            server.run(sockets=[sock])
        finally:
            print("stopping: the run under way finishes, stored events wait for the next start", flush=True)
            if not receive_only:
                worker.stop()
            instance.dispose()
    return EXIT_OK
