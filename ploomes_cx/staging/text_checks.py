"""Pandera checks of text columns, run over the whole column at once: the `Text` dtype, and
pattern, length and prefix checks run by DuckDB.

Pandera's own `str_matches`, `str_length` and `str_startswith` call Python once per value; on a
million-row staging table they were most of the validation time. These run the same kind of test
as one DuckDB expression over the column (RE2 regular expressions, code-point lengths), several
times faster, and still answer per value, so a failing row is reported by Pandera as before.

Patterns are RE2 and must match the whole value. `SPACE` is Python's `\\s` (every character
`str.isspace()` accepts) spelled for RE2, whose own `\\s` is ASCII only.

Registering a check makes Pandera import its data-synthesis strategies, which import Hypothesis
whenever it is installed: a development install (the tests use it), not a production one, which
has none. Nothing here synthesises data, and on such an install that import cost about 0.3 s in
every process that builds the definitions (each CLI command, run worker, code server and
listener; `python -X importtime -c 'import hypothesis.strategies, hypothesis.extra.pandas'`: 0.34
s). `_strategies_without_hypothesis` loads the strategies as an install without Hypothesis has
them. Hypothesis itself stays importable; Pandera's own data synthesis (`schema.example()`) is off
in a process that imported ploomes_cx, as in production. For a moment at import another thread's
`import hypothesis` would fail; nothing of ours imports it.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterable

import duckdb
import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype
from pandera import dtypes as pa_dtypes
from pandera import extensions
from pandera.engines import pandas_engine


def _strategies_without_hypothesis() -> None:
    if "hypothesis" in sys.modules or "pandera.strategies.pandas_strategies" in sys.modules:
        return  # already paid, or already loaded
    sys.modules["hypothesis"] = None  # type: ignore[assignment]  # `import hypothesis` raises ImportError
    try:
        import pandera.strategies.pandas_strategies  # noqa: F401
    finally:
        sys.modules.pop("hypothesis", None)


_strategies_without_hypothesis()

SPACE = r"\t-\r\x{1c}-\x{20}\x{85}\p{Z}"


@pandas_engine.Engine.register_dtype
@pa_dtypes.immutable
class Text(pandas_engine.NpString):
    """`str`, checked in one pass of pandas' C type inference when every value of an object
    column is a string or null, the staging tables' normal case. Pandera's own check calls a
    Python function per value, which cost seconds per million-row table; any other column, and
    any failure, gets that check, so its failure cases are the ones Pandera reports."""

    def check(
        self, pandera_dtype: pa_dtypes.DataType, data_container: pd.Series | None = None
    ) -> bool | Iterable[bool]:
        if (
            data_container is not None
            and data_container.dtype == object
            and infer_dtype(data_container, skipna=True) in ("string", "empty")
        ):
            return True
        return super().check(pandera_dtype, data_container)


def _by_duckdb(values: pd.Series, test: str, *params: object) -> pd.Series:
    """`test` (SQL over the text `v`, parameters `$1`...) per value; a value that is not text
    fails. Nulls are the caller's: Pandera keeps them out of a check unless asked."""
    texts = values.to_numpy(dtype=object)
    if infer_dtype(values, skipna=True) in ("string", "empty"):
        text = None  # every value: no copy of the column
    else:  # a bug upstream, not data
        text = values.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
        texts = texts[text]
    out = np.zeros(len(values), dtype=bool)
    if len(texts):
        with _database().cursor() as con:
            con.register("texts", pd.DataFrame({"v": texts}, copy=False))
            ok = con.execute(f"select coalesce({test}, false) as ok from texts", list(params)).fetchnumpy()[
                "ok"
            ]
        if text is None:
            out = np.asarray(ok, dtype=bool)
        else:
            out[text] = ok
    return pd.Series(out, index=values.index)


@functools.cache
def _database() -> duckdb.DuckDBPyConnection:
    """One in-memory database for every check, made on first use; each check runs on a cursor of
    its own (a connection per check cost a fifth of the checks' time on a million-row table)."""
    return duckdb.connect()


@extensions.register_check_method(statistics=["pattern"], supported_types=pd.Series)
def full_match(values: pd.Series, *, pattern: str) -> pd.Series:
    """The whole value matches `pattern` (RE2)."""
    return _by_duckdb(values, "regexp_full_match(v, $1)", pattern)


@extensions.register_check_method(statistics=["min_value", "max_value"], supported_types=pd.Series)
def text_length(values: pd.Series, *, min_value: int, max_value: int | None = None) -> pd.Series:
    """Characters (code points, as Python's `len`) between `min_value` and `max_value`."""
    if max_value is None:
        return _by_duckdb(values, "length(v) >= $1", min_value)
    return _by_duckdb(values, "length(v) between $1 and $2", min_value, max_value)


@extensions.register_check_method(statistics=["prefix"], supported_types=pd.Series)
def text_starts_with(values: pd.Series, *, prefix: str) -> pd.Series:
    """The value begins with `prefix`."""
    return _by_duckdb(values, "starts_with(v, $1)", prefix)
