"""`ploomes-cx`: the command line of the public contract (shared/specs/mapping-and-cli.md §2).

Exit codes: 0 all good (or nothing to do), 1 some records failed or were refused by CustomerX,
2 usage or mapping error, 3 the run failed (API unreachable, credentials missing or refused, bug).
Each command is in a module of its own: `sync.py`, `reconcile.py`, `webhooks.py`, `listen.py`, `review.py`, `init.py`, `check.py`, `fields.py`, `servers.py` (sandbox,
demo, ui).
"""

from __future__ import annotations

import argparse
import sys
import warnings

from ploomes_cx.cli.check import add_check
from ploomes_cx.cli.codes import EXIT_OK, EXIT_RECORDS_FAILED, EXIT_RUN_FAILED, EXIT_USAGE
from ploomes_cx.cli.fields import add_fields
from ploomes_cx.cli.init import add_init
from ploomes_cx.cli.listen import add_listen
from ploomes_cx.cli.reconcile import add_reconcile
from ploomes_cx.cli.review import add_review
from ploomes_cx.cli.servers import add_demo, add_sandbox, add_ui
from ploomes_cx.cli.sync import add_sync
from ploomes_cx.cli.webhooks import add_webhooks

__all__ = ["EXIT_OK", "EXIT_RECORDS_FAILED", "EXIT_RUN_FAILED", "EXIT_USAGE", "main"]

EXAMPLES = """\
examples:
  ploomes-cx sandbox                                  # local Ploomes API on 127.0.0.1:8765
  ploomes-cx sync sandbox --window 2026-11-01         # one daily window of mappings/sandbox.yaml
  ploomes-cx sync mappings/acme.yaml --window 2026-03-01..2026-03-07 --dry-run
  ploomes-cx init acme                                # write mappings/acme.yaml by answering questions
  ploomes-cx check mappings/acme.yaml                 # credentials and custom fields, before a sync
  ploomes-cx fields mappings/acme.yaml                # the account's custom fields, a block to paste
  ploomes-cx reconcile sandbox --dry-run              # what Ploomes deletes would change
  ploomes-cx webhooks register acme --url https://sync.example.com/ploomes/webhook
  ploomes-cx listen acme                              # receive them: changes land within seconds
  ploomes-cx review sandbox                           # decide look-alikes: same, different, skip
  ploomes-cx demo                                     # sandbox + 3 windows + the Dagster UI
  ploomes-cx ui                                       # the UI and daemon on the same instance

exit codes: 0 ok, 1 some records failed or were refused by CustomerX (retried next sync),
            2 usage or mapping error, 3 the run failed (API unreachable, credentials, bug)
"""


def main(argv: list[str] | None = None) -> int:
    # our partitioned assets use `backfill_policy` on purpose (one run per range); the beta notice
    # would open every command's output
    warnings.filterwarnings("ignore", message="Parameter `backfill_policy`")
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
    for add in (
        add_sync,
        add_reconcile,
        add_webhooks,
        add_listen,
        add_review,
        add_init,
        add_check,
        add_fields,
        add_sandbox,
        add_demo,
        add_ui,
    ):
        add(sub)
    return parser


if __name__ == "__main__":
    sys.exit(main())
