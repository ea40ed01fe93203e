"""The SQL normalizers (`staging/normalize_sql.py`) against the Python ones they stand in for:
on every value SQL does not hand over to Python, both give the same columns, so a value is
cleaned by the same rule whichever side ran it."""

from __future__ import annotations

import functools

import duckdb
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ploomes_cx.sandbox import PloomesDataset
from ploomes_cx.staging import normalize_sql
from ploomes_cx.staging.normalize import normalize_names
from ploomes_cx.staging.party import PARTY_FIELDS, UNKEYED_NAME

# ASCII (control characters and whitespace included), the Latin-1 letters names use, and a few
# characters that must go to Python: NBSP, ª, combining marks, €, a non-Latin letter
ALPHABET = st.characters(codec="ascii") | st.sampled_from(list("ÀÇÉÍÓÚãçéêíõúüßÆæØÿ\xa0ª\u0303€Ωǅ"))
DOC_LIKE = st.text(alphabet="0123456789.-/ ABCXZ", max_size=20)
PHONE_LIKE = st.text(alphabet="0123456789 ()-+.", min_size=8, max_size=18)
VALUES = st.lists(
    st.one_of(
        st.none(),
        st.text(ALPHABET, max_size=30),
        DOC_LIKE,
        PHONE_LIKE,
        st.emails(),
        st.emails().map(str.upper),
    ),
    max_size=60,
)


@functools.cache
def _database() -> duckdb.DuckDBPyConnection:
    """One in-memory database for the module, a cursor per comparison: opening a DuckDB database
    costs about 15 ms, a tenth of a comparison, and the property test makes 150."""
    return duckdb.connect()


def _compare(values: list[str | None]) -> dict[str, float]:
    """Per field, the share of values SQL cleaned itself; asserts SQL and Python agree on them."""
    frame = pd.DataFrame({"i": range(len(values)), "raw": pd.Series(values, dtype=object)})
    shares = {}
    with _database().cursor() as con:
        con.register("src", frame)
        # every value under the column each field reads, all fields in one query as staging
        # normalizes them; then the name as a party never matched by name reads it, where a key is
        # only there or not
        for pairs in (PARTY_FIELDS, [(UNKEYED_NAME, normalize_names)]):
            fields = [field for field, _ in pairs]
            columns = ", ".join(f"raw as {field.raw}" for field in fields)
            sql = f"select * from {normalize_sql.normalized(f'(select i, {columns} from src)', fields)} order by i"
            out = con.execute(sql).fetchdf()
            for field, python in pairs:
                shares[field.name] = _agree(frame["raw"], out, field, python(frame["raw"]))
    return shares


def _agree(raw: pd.Series, out: pd.DataFrame, field: normalize_sql.Field, expected: pd.DataFrame) -> float:
    """The share of `raw` values SQL cleaned for `field`, asserting Python (`expected`) cleans
    them alike."""
    mine = ~out[f"{field.name}_py"].to_numpy(dtype=bool)
    for column in field.outputs:
        got = out[column].astype(object).where(out[column].notna(), None)[mine]
        want = expected[column].astype(object).where(expected[column].notna(), None)[mine]
        if field is UNKEYED_NAME and column == "name_key":
            got, want = got.notna(), want.notna()
        mismatched = [(v, g, w) for v, g, w in zip(raw[mine], got, want, strict=True) if g != w]
        assert not mismatched, f"{column}: (raw, sql, python) {mismatched[:3]}"
    return float(mine.mean()) if len(raw) else 1.0


@settings(max_examples=150, deadline=None)
@given(VALUES)
def test_sql_and_python_normalizers_agree_on_every_value_sql_keeps(values: list[str | None]) -> None:
    _compare(values)


@pytest.mark.parametrize(
    "value",
    [
        "529.982.247-25",  # formatted CPF
        "52998224724",  # wrong check digit
        "11111111111",  # repeated digits
        "12.ABC.345/01DE-35",  # alphanumeric CNPJ
        "11.222.333/0001-8",  # one digit short
        " Maria@Example.COM ",
        "a@b.com; c@d.com",
        "+55 (11) 98765-4321",
        "011 3333-4444",
        "\x0b\tJoão  da\x1fSilva ",
        "Ärzte & Cia. Ltda",
        "!!!",
        "",
        None,
    ],
)
def test_dirty_values_agree(value: str | None) -> None:
    _compare([value])


def test_sql_cleans_nearly_every_value_of_a_dirty_account() -> None:
    """What makes staging fast: the sandbox's dirty contacts (formatted documents, upper-case
    e-mails, accented names, formatted phones) are cleaned in SQL; Python sees the rest."""
    data = PloomesDataset(persons=4000)
    rows = [data.render("contacts", i) for i in range(len(data.tables["contacts"]))]
    by_field = {
        "document": [r.get("Register") or r.get("CNPJ") or r.get("CPF") for r in rows],
        "email": [r.get("Email") for r in rows],
        "phone": [(r.get("Phones") or [{}])[0].get("PhoneNumber") for r in rows],
        "name": [r.get("Name") for r in rows],
    }
    for name, values in by_field.items():
        share = _compare(values)[name]
        assert share >= 0.9, f"{name}: SQL cleaned only {share:.0%}"
