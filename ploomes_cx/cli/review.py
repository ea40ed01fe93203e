"""`ploomes-cx review MAPPING [--list | --same ID ID... | --different ID ID...]` (§4.4)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import textwrap
from typing import TYPE_CHECKING

from ploomes_cx.cli.codes import EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE

if TYPE_CHECKING:
    from ploomes_cx.mapping import Mapping
    from ploomes_cx.review import Candidate

PROMPT = "[s]ame  [d]ifferent  s[k]ip  [q]uit > "
CONFIRM = "type yes to merge them in CustomerX as said above (anything else: back) > "


def add_review(sub: argparse._SubParsersAction) -> None:
    review = sub.add_parser(
        "review",
        help="decide look-alike records one at a time: same, different or skip",
        description="Show the look-alike candidates the last sync staged, one at a time, their records side by "
        "side (name, legal name, CPF/CNPJ, e-mail, phone, code, change date, contacts, won deals), and append "
        "each answer to mappings/<name>.decisions.csv, which the next sync honours. Reads the local DuckDB "
        "file only: no API is called.",
        epilog=textwrap.dedent("""\
            examples:
              ploomes-cx review sandbox
              ploomes-cx review sandbox --list
              ploomes-cx review sandbox --same 1012 1307 --note "typo in the CNPJ"
              ploomes-cx review sandbox --different 1040 1041

            exit codes: 0 done, 2 usage or mapping error (a decision contradicting another, nothing staged yet)
            """),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    review.add_argument(
        "mapping",
        metavar="MAPPING",
        help="path to a mapping YAML file, or the name of one in $PLOOMES_CX_MAPPINGS, else ./mappings",
    )
    what = review.add_mutually_exclusive_group()
    what.add_argument("--list", action="store_true", help="print the open candidates and exit")
    what.add_argument("--same", nargs="+", type=int, metavar="ID", help="record that these records are one")
    what.add_argument(
        "--different", nargs="+", type=int, metavar="ID", help="record that these records are not"
    )
    review.add_argument("--note", default="", help="why (kept in the file)")
    review.add_argument(
        "--yes",
        action="store_true",
        help="with --same: write it even when CustomerX already holds two of them as clients (merged there "
        "at the next sync)",
    )
    review.add_argument("--by", default="", help="who decides (default: the login name)")
    review.set_defaults(func=cmd_review)


def cmd_review(args: argparse.Namespace) -> int:
    from ploomes_cx.decisions import check_addable, decisions_path
    from ploomes_cx.mapping import MappingError
    from ploomes_cx.mappings_folder import resolve_mapping
    from ploomes_cx.review import NothingStaged, append_decision, merge_in_customerx_for, open_candidates
    from ploomes_cx.runtime.duckdb_io import WarehouseBusy

    by = args.by or os.environ.get("USER") or getpass.getuser()
    try:
        m = resolve_mapping(args.mapping)
        if args.same or args.different:
            decision, ids = ("same", args.same) if args.same else ("different", args.different)
            if len(set(ids)) < 2:
                print("error: name two or more different Ploomes Ids", file=sys.stderr)
                return EXIT_USAGE
            check_addable(m, decision, ids)
            merge = merge_in_customerx_for(m, ids) if decision == "same" else None
            if merge:
                print(merge)
                if not args.yes:
                    print("nothing written: pass --yes to record it", file=sys.stderr)
                    return EXIT_USAGE
            append_decision(m, decision, ids, args.note, by)
            print(
                f"{decision}: {' '.join(map(str, ids))} written to {decisions_path(m)}; the next sync honours it"
            )
            return EXIT_OK
        candidates = open_candidates(m)
    except (MappingError, NothingStaged) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except WarehouseBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_RUN_FAILED
    if args.list:
        for c in candidates:
            names = " | ".join(str(c.records[i].get("name") or "?") for i in c.ids)
            print(f"{' '.join(map(str, c.ids))}\t{c.rule}\t{c.score:.2f}\t{names}")
        print(f"{len(candidates)} open candidate(s)", file=sys.stderr)
        return EXIT_OK
    return _interactive(m, candidates, by)


def _interactive(m: Mapping, candidates: list[Candidate], by: str) -> int:
    from ploomes_cx.mapping import MappingError
    from ploomes_cx.review import append_decision, merge_in_customerx, side_by_side

    decided = 0
    for n, c in enumerate(candidates, start=1):
        print(
            f"\ncandidate {n} of {len(candidates)}: {c.rule}, score {c.score:.2f}\n{side_by_side(c)}\n",
            flush=True,
        )
        merge = merge_in_customerx(m, c)
        if merge:
            print(merge, flush=True)
        answer = _answer(merge is not None)
        if answer == "q":
            break
        if answer == "k":
            continue
        decision = "same" if answer == "s" else "different"
        try:
            append_decision(m, decision, list(c.ids), f"review: {c.rule} {c.score:.2f}", by)
        except MappingError as exc:
            print(f"not written: {exc}")
            continue
        decided += 1
        print(f"{decision}: written")
    print(
        f"\n{decided} decision(s) written; the next sync honours them (ploomes-cx sync {m.name} --window ...)"
    )
    return EXIT_OK


def _answer(both_loaded: bool) -> str:
    """s, d, k or q; a `same` that merges two clients CustomerX holds only once confirmed."""
    while True:
        answer = _read(PROMPT)
        if answer not in ("s", "d", "k", "q"):
            print("answer s, d, k or q")
        elif answer == "s" and both_loaded and _read(CONFIRM) != "yes":
            print("not merged: answer again")
        else:
            return answer


def _read(prompt: str) -> str:
    try:
        return input(prompt).strip().lower()
    except EOFError:
        return "q"
