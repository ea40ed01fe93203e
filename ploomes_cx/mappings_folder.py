"""Where a mapping is found: the folder a user works in, not the folder the package is installed in.

mapping-and-cli.md §2 lets every command take a path or the *name* of a mapping in `mappings/`. An
installed package has no `mappings/` of its own worth reading (it would be inside site-packages),
and the state folder already defaults to the current directory, so names resolve in
`$PLOOMES_CX_MAPPINGS` when set, else in `./mappings` of the current directory. A clone is just one
current directory. The code location reads the same folder, so the UI shows what the CLI syncs.

One mapping is built into the package: `sandbox`, which plays against the built-in sandbox servers,
so `ploomes-cx sandbox` then `ploomes-cx sync sandbox` work in an empty folder. A file of the same
name in the user's folder wins over it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ploomes_cx.mapping import Mapping, MappingError, load_mapping

BUILT_IN_DIR = Path(__file__).resolve().parent / "sandbox" / "mappings"
# Set by `ploomes-cx demo` and `ploomes-cx ui` so their UI shows the built-in mappings the user's
# folder does not shadow, as the CLI finds them; a deployment's code location never does.
WITH_BUILT_IN = "PLOOMES_CX_WITH_BUILT_IN"


def mappings_dir() -> Path:
    """`$PLOOMES_CX_MAPPINGS` when set, else `./mappings` of the current directory (absolute)."""
    configured = os.environ.get("PLOOMES_CX_MAPPINGS")
    return Path(configured).resolve() if configured else Path.cwd() / "mappings"


def _where(directory: Path) -> str:
    if os.environ.get("PLOOMES_CX_MAPPINGS"):
        return f"{directory} ($PLOOMES_CX_MAPPINGS)"
    return f"{directory} (./mappings of the current directory; $PLOOMES_CX_MAPPINGS names another folder)"


def mapping_files(directory: Path) -> list[Path]:
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def load_mappings(directory: Path | None = None) -> list[Mapping]:
    """Every mapping of a folder (none when the folder does not exist), names checked unique."""
    directory = directory or mappings_dir()
    mappings = [load_mapping(f) for f in mapping_files(directory)]
    _check_unique_names(mappings)
    return mappings


def location_mappings(directory: Path) -> list[Mapping]:
    """What the code location builds: the folder's mappings, and the built-in ones its names do not
    shadow when `$PLOOMES_CX_WITH_BUILT_IN` is 1."""
    mappings = load_mappings(directory)
    if os.environ.get(WITH_BUILT_IN) == "1":
        names = {m.name for m in mappings}
        mappings += [b for b in map(load_mapping, mapping_files(BUILT_IN_DIR)) if b.name not in names]
    return mappings


def _check_unique_names(mappings: Iterable[Mapping]) -> None:
    seen: dict[str, str] = {}
    for m in mappings:
        if m.name in seen:
            raise MappingError(
                f"{m.source_path}: name: {m.name!r} is already used by {seen[m.name]}; "
                "each mapping needs its own name because it prefixes asset keys and jobs"
            )
        seen[m.name] = m.source_path


def built_in(path: str | Path) -> bool:
    """Whether a mapping file is one of the package's own (whose folder is not the user's to write)."""
    return Path(path).resolve().parent == BUILT_IN_DIR


def resolve_mapping(ref: str) -> Mapping:
    """A CLI argument: a path to a YAML file, or the `name` of a mapping in the user's folder, then
    among the built-in ones; the error names every folder searched."""
    candidate = Path(ref)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return load_mapping(candidate)
    directory = mappings_dir()
    for folder in (directory, BUILT_IN_DIR):
        for path in mapping_files(folder):
            m = load_mapping(path)
            if m.name == ref:
                return m
    built = ", ".join(p.stem for p in mapping_files(BUILT_IN_DIR))
    raise MappingError(
        f"{ref}: no mapping file with that path, and no mapping named {ref!r} in {_where(directory)} "
        f"nor among the built-in mappings ({built}); pass the file's path, or run the command from the "
        "folder that holds mappings/"
    )
