"""`ploomes-cx init`: write a mapping by answering questions (mapping-and-cli.md §5)."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap

from ploomes_cx.cli.codes import EXIT_OK, EXIT_USAGE


def add_init(sub: argparse._SubParsersAction) -> None:
    init = sub.add_parser(
        "init",
        help="write mappings/NAME.yaml by answering questions, custom fields picked from the live account",
        description="Ask for the choices of a mapping (sources, identifiers, timeline, cadence, first window, "
        "time zone and, when $PLOOMES_BASE_URL and $PLOOMES_USER_KEY are set, the custom fields to bring, "
        "picked by number from the account's list) and write mappings/NAME.yaml with comments. Enter keeps "
        "the default in brackets; a wrong answer is asked again. The file names environment variables, "
        "never their values.",
        epilog=textwrap.dedent("""\
            examples:
              ploomes-cx init acme
              ploomes-cx init acme --force      # replace an existing mappings/acme.yaml
            """),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    init.add_argument("name", metavar="NAME", help="the mapping's name: lower case, digits and _")
    init.add_argument("--force", action="store_true", help="replace an existing file")
    init.set_defaults(func=cmd_init)


def cmd_init(args: argparse.Namespace) -> int:
    import yaml

    from ploomes_cx.connect.init import Answers, Prompter, interview, render
    from ploomes_cx.mapping import Mapping
    from ploomes_cx.mappings_folder import mappings_dir

    try:
        Mapping.model_validate({"name": args.name})
    except Exception:
        print(
            f"error: {args.name!r} cannot name a mapping: use lower case letters, digits and _ (e.g. acme_br)"
        )
        return EXIT_USAGE
    target = mappings_dir() / f"{args.name}.yaml"
    if target.exists() and not args.force:
        print(f"error: {target} exists; pass --force to replace it", file=sys.stderr)
        return EXIT_USAGE
    print(f"Writing {target}. Enter keeps the value in brackets.")
    try:
        answers = interview(Answers(args.name), Prompter(input, print), _account_fields())
    except (EOFError, KeyboardInterrupt):
        print("\nstopped; nothing was written", file=sys.stderr)
        return EXIT_USAGE
    text = render(answers)
    try:
        Mapping.model_validate(yaml.safe_load(text))
    except Exception as exc:  # a defect of init itself: never write a file check would refuse
        print(f"error: the answers make an invalid mapping, so nothing was written: {exc}", file=sys.stderr)
        return EXIT_USAGE
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():  # e.g. a clone's mappings/sandbox.yaml: replace the link, not what it names
        target.unlink()
    target.write_text(text)
    print(f"\nwrote {target}\nnext: ploomes-cx check {args.name}")
    return EXIT_OK


def _account_fields() -> list | None:
    """The live account's custom fields with a small fill sample, or None without its variables."""
    from ploomes_cx.connect.account import catalogue, ploomes_api, recent
    from ploomes_cx.connect.fields import SAMPLED_SETS, field_rows
    from ploomes_cx.mapping import Mapping
    from ploomes_cx.ploomes.client import PloomesError

    m = Mapping.model_validate({"name": "init"})
    if not (os.environ.get(m.ploomes.base_url_env) and os.environ.get(m.ploomes.user_key_env)):
        return None
    try:
        with ploomes_api(m) as api:
            fields = catalogue(api)
            samples = {e: recent(api, SAMPLED_SETS[e], 50) for e in ("contacts", "deals", "orders")}
    except PloomesError as exc:
        print(f"cannot read the Ploomes account's fields ({exc}); continuing without them")
        return None
    return field_rows(fields, samples)
