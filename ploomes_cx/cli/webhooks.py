"""`ploomes-cx webhooks register|unregister MAPPING --url URL` (mapping-and-cli.md §4.3)."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from urllib.parse import urlsplit

from ploomes_cx.cli.codes import EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, ready_mapping


def add_webhooks(sub: argparse._SubParsersAction) -> None:
    hooks = sub.add_parser(
        "webhooks",
        help="register (or remove) the Ploomes webhooks `listen` receives",
        description="Register on Ploomes one webhook per entity and action the mapping needs (create, update, "
        "delete; win, lose, reopen on deals), all calling URL with the ValidationKey held by the variable the "
        "mapping names in webhooks.validation_key_env. Running it again keeps what is there and adds what is "
        "missing; unregister removes the mapping's webhooks at URL and nothing else.",
        epilog=textwrap.dedent("""\
            examples:
              ploomes-cx webhooks register acme --url https://sync.example.com/ploomes/webhook
              ploomes-cx webhooks unregister acme --url https://sync.example.com/ploomes/webhook

            exit codes: 0 done, 2 usage or mapping error (a URL that is not absolute http(s), an action the
                        account does not list), 3 a variable missing, the key refused or Ploomes unreachable
            """),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = hooks.add_subparsers(dest="verb", metavar="register|unregister", required=True)
    for verb, text in (
        ("register", "register the mapping's webhooks at URL (idempotent)"),
        ("unregister", "remove the mapping's webhooks at URL, and only those"),
    ):
        p = verbs.add_parser(verb, help=text, description=text)
        p.add_argument(
            "mapping",
            metavar="MAPPING",
            help="path to a mapping YAML file, or the name of one in $PLOOMES_CX_MAPPINGS, else ./mappings",
        )
        p.add_argument(
            "--url", required=True, help="the public URL Ploomes calls: https://<host>/ploomes/webhook"
        )
        p.set_defaults(func=cmd_webhooks)


def cmd_webhooks(args: argparse.Namespace) -> int:
    from ploomes_cx.connect.account import ploomes_api
    from ploomes_cx.ploomes.client import PloomesError
    from ploomes_cx.ploomes.webhooks import WebhookSetupError, register, unregister

    url = urlsplit(args.url)
    if url.scheme not in ("http", "https") or not url.netloc:
        print(f"error: --url {args.url!r} is not an absolute http(s) URL", file=sys.stderr)
        return EXIT_USAGE
    m = ready_mapping(args.mapping, customerx=False)
    if isinstance(m, int):
        return m
    key_env = m.webhooks.validation_key_env
    key = os.environ.get(key_env, "")
    if args.verb == "register" and not key:
        print(
            f"error: ${key_env} is not set; set it to a long random secret (e.g. `openssl rand -hex 32`), "
            f"the same value `ploomes-cx listen {m.name}` will check",
            file=sys.stderr,
        )
        return EXIT_RUN_FAILED
    try:
        with ploomes_api(m) as api:
            done = (
                register(m, api, args.url, key) if args.verb == "register" else unregister(m, api, args.url)
            )
    except WebhookSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except PloomesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_RUN_FAILED
    if args.verb == "register":
        for label, rows in (("created", done.created), ("kept", done.kept)):
            for w in rows:
                print(f"  {label:<8} {w.entity} {w.action} (EntityId {w.entity_id}, ActionId {w.action_id})")
        print(
            f"{len(done.created)} webhook(s) created, {len(done.kept)} already there, all calling {args.url}; "
            f"next: ploomes-cx listen {m.name}"
        )
    else:
        print(f"{len(done.removed)} webhook(s) removed from {args.url}")
    if done.not_followed:
        print(
            f"not followed by webhooks (their changes arrive with the windows): {', '.join(done.not_followed)}"
        )
    return EXIT_OK
