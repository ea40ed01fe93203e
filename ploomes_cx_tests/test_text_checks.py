"""The DuckDB-run text checks of the staging contracts give, value by value, the answers of the
Python tests they replaced: `re.fullmatch` with Python's `\\s`, `len`, `str.startswith`."""

from __future__ import annotations

import re
import subprocess
import sys

import pandas as pd
import pandera.pandas as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from ploomes_cx.staging import schemas
from ploomes_cx.staging.text_checks import full_match, text_length, text_starts_with

# whitespace of every kind Python knows, the separators e-mails and lists use, digits, letters
ALPHABET = st.characters(codec="utf-8", exclude_categories=("Cs",)) | st.sampled_from(
    list(" \t\n\x0b\x1c\x85\xa0\u2003\u2028\u3000@.,+0123456789abcxyzABC")
)
# every character Python's `\s` matches, from the Unicode tables rather than from our pattern
WHITESPACE = [chr(c) for c in range(0x3001) if chr(c).isspace()]
SPACED_EMAILS = st.builds(
    lambda email, space, at: email[:at] + space + email[at:],
    st.emails(),
    st.sampled_from(WHITESPACE),
    st.integers(0, 12),
)
TEXTS = st.lists(st.text(ALPHABET, max_size=20) | st.emails() | SPACED_EMAILS, min_size=1, max_size=40)

# the contract patterns as Python wrote them before they became RE2
PYTHON_PATTERNS = {
    schemas.EMAIL: r"[^@\s]+@[^@\s]+\.[a-z]{2,63}",
    schemas.DOCUMENT: r"([0-9]{11}|[0-9A-Z]{12}[0-9]{2})",
    schemas.E164: r"\+[1-9][0-9]{7,14}",
    schemas.ID_LIST: r"([0-9]+(,[0-9]+)*)?",
}


@settings(max_examples=100, deadline=None)
@given(TEXTS)
def test_full_match_agrees_with_python_fullmatch(texts: list[str]) -> None:
    values = pd.Series(texts, dtype=object)
    for re2, python in PYTHON_PATTERNS.items():
        want = [re.fullmatch(python, t) is not None for t in texts]
        assert full_match(values, pattern=re2).tolist() == want, re2


@settings(max_examples=100, deadline=None)
@given(TEXTS, st.integers(0, 5), st.integers(0, 25))
def test_length_and_prefix_agree_with_python(texts: list[str], low: int, high: int) -> None:
    values = pd.Series(texts, dtype=object)
    assert text_length(values, min_value=low).tolist() == [len(t) >= low for t in texts]
    assert text_length(values, min_value=low, max_value=high).tolist() == [
        low <= len(t) <= high for t in texts
    ]
    assert text_starts_with(values, prefix="{").tolist() == [t.startswith("{") for t in texts]


def test_in_a_contract_nulls_pass_and_non_text_fails_with_its_row() -> None:
    schema = pa.DataFrameSchema(
        {"c": pa.Column(object, nullable=True, checks=pa.Check.full_match(pattern="[0-9]+"))}
    )
    frame = pd.DataFrame({"c": ["12", None, "1a", 7, "3"]})
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        raise AssertionError("1a and 7 break the contract")
    assert sorted(cases["index"].tolist()) == [2, 3]


def test_building_the_definitions_leaves_hypothesis_unimported_and_importable() -> None:
    """Hypothesis is installed here (the tests use it); registering our checks must not import it
    through Pandera's data-synthesis strategies in every CLI command, run worker and code server."""
    script = (
        "import sys; import ploomes_cx.factory; "
        "assert 'pandera.strategies.pandas_strategies' in sys.modules; "  # what would have imported it
        "assert 'hypothesis' not in sys.modules, 'imported'; "
        "import hypothesis.strategies; print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
