"""`ploomes-cx check`: is this mapping ready to sync? (mapping-and-cli.md §5)"""

from __future__ import annotations

import argparse
import textwrap

from ploomes_cx.cli.codes import EXIT_OK, EXIT_USAGE


def add_check(sub: argparse._SubParsersAction) -> None:
    check = sub.add_parser(
        "check",
        help="validate a mapping and try its credentials and custom fields against both APIs",
        description="Validate the mapping, call each API once with its credentials, and check every mapped "
        "custom field and external_code_field against the Ploomes account's /Fields. One line per check, with "
        "what to do when it fails; then probes each query form the sync may use and prints the form it will use. "
        "Writes nothing anywhere unless --save-probes is given.",
        epilog=textwrap.dedent("""\
            examples:
              ploomes-cx check sandbox
              ploomes-cx check mappings/acme.yaml
              ploomes-cx check acme --save-probes   # probe again and store the forms the sync will use

            exit codes: 0 all good, 2 mapping error (YAML, keys, a custom field the account does not have),
                        3 a credential missing or refused (the variable is named) or an API unreachable
            """),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument(
        "mapping",
        metavar="MAPPING",
        help="path to a mapping YAML file, or the name of one in $PLOOMES_CX_MAPPINGS, else ./mappings",
    )
    check.add_argument(
        "--save-probes",
        action="store_true",
        help="store the query forms the probes chose in $PLOOMES_CX_HOME/probes/NAME.json for the sync "
        "(without it, check writes nothing; the first sync that needs a form probes and stores it)",
    )
    check.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    from ploomes_cx.connect.check import FAIL, exit_code, run_checks
    from ploomes_cx.mapping import MappingError
    from ploomes_cx.mappings_folder import resolve_mapping

    try:
        m = resolve_mapping(args.mapping)
    except MappingError as exc:
        print(f"checking {args.mapping}\n  {FAIL:<4}  mapping: {exc}")
        print("result: the mapping is not valid; fix the file and run check again (exit 2)")
        return EXIT_USAGE
    print(f"checking mapping {m.name} ({m.source_path})")
    print(
        f"  ok    mapping: valid (clients from {m.clients.source}, contacts from {m.contacts.source}, "
        f"contracts from {m.contracts.source}, timeline {', '.join(m.timeline) or 'none'})",
        flush=True,
    )
    checks = []
    for check in run_checks(m, getattr(args, "save_probes", False)):
        checks.append(check)
        print(check.line(), flush=True)
    code = exit_code(checks)
    failed = sum(c.status == FAIL for c in checks)
    if code == EXIT_OK:
        print(f"result: ready to sync; next: ploomes-cx sync {m.name} --window {m.sync.start} --dry-run")
    else:
        print(f"result: {failed} check(s) failed (exit {code})")
    return code
