"""The crosswalk's writes: a pending row is on disk before the call it announces; the rows of
calls that landed wait a little and go in one statement."""

from __future__ import annotations

import duckdb

from ploomes_cx.load import ledger


def _rows(path: str) -> dict[str, str]:
    """What another process would find in the file now."""
    with duckdb.connect(path, read_only=True) as con:
        return dict(con.execute("select external_id, state from s.crosswalk").fetchall())


def test_pending_rows_are_written_at_once_and_sent_rows_in_batches(tmp_path):
    path = str(tmp_path / "w.duckdb")
    with duckdb.connect(path) as con:
        ledger.ensure(con, "s")
        writer = ledger.Crosswalk(con, "s", "contacts", "run-1")
        writer.SECONDS = 3600.0  # only the count and the pending rows flush here
        writer.remember("a", 1, "h1", {"email": "a@x"}, "sent")
        writer.remember("b", 2, "h2", {"email": "b@x"}, "sent")
    assert _rows(path) == {}  # closed without a flush: a kill loses only these

    with duckdb.connect(path) as con:
        writer = ledger.Crosswalk(con, "s", "contacts", "run-2")
        writer.SECONDS = 3600.0
        writer.remember("a", 1, "h1", {"email": "a@x"}, "sent")
        writer.remember("c", None, None, None, "pending")  # before its POST: with what waited
        assert ledger.read(con, "s", "contacts").keys() == {"a", "c"}
        for i in range(writer.BATCH - 1):
            writer.remember(f"n{i}", i, "h", {}, "sent")
        assert len(ledger.read(con, "s", "contacts")) == 2
        writer.remember("last", 9, "h", {}, "sent")  # the BATCH-th waiting row
        assert len(ledger.read(con, "s", "contacts")) == 2 + writer.BATCH
        writer.remember("c", 7, "h3", {"email": "c@x"}, "sent")
        writer.flush()
        writer.SECONDS = 0.0  # a slow CustomerX: a second has passed by the next landed call
        writer.remember("slow", 8, "h", {}, "sent")
        assert "slow" in ledger.read(con, "s", "contacts")
    rows = _rows(path)
    assert rows["c"] == "sent" and len(rows) == 3 + writer.BATCH
