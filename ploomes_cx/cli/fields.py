"""`ploomes-cx fields`: the account's custom fields, and a `custom_fields:` block to paste (§5)."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap

from ploomes_cx.cli.codes import EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, ready_mapping

ENTITIES = ("contacts", "deals", "orders", "quotes")


def add_fields(sub: argparse._SubParsersAction) -> None:
    fields = sub.add_parser(
        "fields",
        help="list the Ploomes account's custom fields and print a custom_fields: block to paste",
        description="List the custom fields of the Ploomes account the mapping's variables point at: entity, "
        "name, FieldKey, type, options of option lists, and how many of N recently changed records fill each. "
        "Then print a custom_fields: YAML block with every field the mapping can read; delete the ones that "
        "should not travel and paste it into the mapping.",
        epilog=textwrap.dedent("""\
            examples:
              ploomes-cx fields sandbox
              ploomes-cx fields mappings/acme.yaml --entity deals --sample 300
              ploomes-cx fields sandbox --json > fields.json
            """),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fields.add_argument(
        "mapping",
        metavar="MAPPING",
        help="path to a mapping YAML file, or the name of one in $PLOOMES_CX_MAPPINGS, else ./mappings",
    )
    fields.add_argument("--entity", choices=ENTITIES, help="only this entity's fields")
    fields.add_argument(
        "--sample", type=int, default=100, metavar="N", help="recently changed records per entity (max 300)"
    )
    fields.add_argument("--json", action="store_true", help="the fields as JSON, no block")
    fields.set_defaults(func=cmd_fields)


def cmd_fields(args: argparse.Namespace) -> int:
    from ploomes_cx.connect.account import catalogue, ploomes_api, recent
    from ploomes_cx.connect.fields import SAMPLED_SETS, field_rows, table, yaml_block
    from ploomes_cx.ploomes.client import PloomesError

    if not 1 <= args.sample <= 300:
        print("error: --sample must be between 1 and 300 (one page)", file=sys.stderr)
        return EXIT_USAGE
    m = ready_mapping(args.mapping, customerx=False)
    if isinstance(m, int):
        return m
    wanted = [args.entity] if args.entity else list(ENTITIES)
    try:
        with ploomes_api(m) as api:
            fields = catalogue(api)
            samples = {e: recent(api, SAMPLED_SETS[e], args.sample) for e in wanted}
    except PloomesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_RUN_FAILED
    rows = [r for r in field_rows(fields, samples) if _wanted(r.entity, args.entity)]
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], ensure_ascii=False, indent=2))
        return EXIT_OK
    print("\n".join(table(rows)))
    print(
        f"\n# {len(rows)} custom field(s). Keep the ones that should travel, then paste into {m.source_path}:\n"
    )
    print(yaml_block(rows, m))
    return EXIT_OK


def _wanted(entity: str, asked: str | None) -> bool:
    """Quote fields are those of an entity other than contact, deal and order: the quote's EntityId
    is not documented (ploomes-api.md §6, I)."""
    if asked is None or entity == asked:
        return True
    return asked == "quotes" and entity.startswith("entity ")
