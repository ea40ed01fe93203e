"""What the assets tell the UI, the runner, the progress lines and the CLI, named once.

Each count a step reports is a metadata key listed here; the assets write them, and
`summary.py` reads them back from a run's events by these same names, so no reader guesses a
key or parses an asset name or a log line.
"""

from __future__ import annotations

from enum import StrEnum

import dagster as dg
import pandas as pd

MAX_ROWS = 10
# the error kind a step's Failure carries, read by the CLI to pick its exit code
ERROR_KIND = "ploomes_cx_error"
# prefix of our own log lines for a step that waits on another process (an account's turn)
WAITING = "waiting:"
# prefix of a load step's progress lines (records done of its total, ETA at the CustomerX pace)
PROGRESS = "progress:"


# raw: the records read in the window
RECORDS = "records"
# staging: how the tables were staged, full (and why) or incremental (what changed), which the
# CLI's window line repeats (docs/incremental-staging.md)
STAGING_PATH = "staging"
# a warning check's count of records waiting for a person (look-alikes), which the CLI's line names
TO_REVIEW = "to_review"
# ... and the command that reviews them
REVIEW_WITH = "review_with"


class Count(StrEnum):
    """Per-entity counts of the staging and load steps, in the order the CLI's table shows them."""

    EXTRACTED = "extracted"  # staging: distinct records of the source, all windows
    STAGED = "staged"
    REJECTED = "rejected"
    MERGED = "merged"
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    FAILED = "failed"

    @property
    def per_window(self) -> bool:
        """Adds up over a sync's windows (what each window did), rather than describing the whole
        account after each window (what staging holds, what stayed unchanged)."""
        return self in (Count.CREATED, Count.UPDATED, Count.FAILED)


class ErrorKind(StrEnum):
    AUTH = "auth"
    REQUEST = "request"
    MAPPING = "mapping"
    CUSTOMERX = "customerx"
    GUARD = "guard"  # a reconcile would remove more than deletes.max_share: nothing was removed


def failure(description: str, kind: ErrorKind) -> dg.Failure:
    """A step failure retrying cannot fix, tagged with its kind for the CLI's exit code."""
    return dg.Failure(description=description, metadata={ERROR_KIND: kind.value}, allow_retries=False)


def markdown(frame: pd.DataFrame, limit: int = MAX_ROWS) -> dg.MetadataValue:
    """A few rows as a markdown table, so the UI shows offenders without SQL."""
    if frame.empty:
        return dg.MetadataValue.md("_none_")
    head = frame.head(limit).astype(str).map(lambda v: v.replace("|", "/")[:60])
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in head.itertuples(index=False)]
    more = f"\n\n_{len(frame) - limit} more_" if len(frame) > limit else ""
    return dg.MetadataValue.md("\n".join(lines) + more)
