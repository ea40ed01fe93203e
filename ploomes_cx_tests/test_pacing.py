"""Pacing books request starts; it never delays a step's first request beyond the account's
schedule (issue 14, part 3: no sleeps beyond pacing). Tested on the booking arithmetic, with
given times, not on a clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from ploomes_cx.runtime.pacing import Pacer


@pytest.mark.parametrize("shared", [False, True])
def test_a_fresh_schedule_starts_the_first_request_at_once_then_spaces_the_rest(
    tmp_path: Path, shared: bool
) -> None:
    pacer = Pacer(60, tmp_path / "pacing" / "acct" if shared else None)  # one per second
    assert pacer._reserve(1000.0, pacer.interval) == 1000.0
    assert pacer._reserve(1000.2, pacer.interval) == 1001.0
    assert pacer._reserve(1000.3, pacer.interval) == 1002.0


def test_a_new_step_on_a_lapsed_schedule_is_not_delayed(tmp_path: Path) -> None:
    """The next step of the same account (a new Pacer on the same file) starts when it asks, once
    the last booked slot has passed; while it has not, it gets the next slot, not a later one."""
    path = tmp_path / "pacing" / "acct"
    first = Pacer(60, path)
    first._reserve(1000.0, first.interval)  # the last request of a step; next slot 1001.0
    following = Pacer(60, path)
    assert following._reserve(1000.5, following.interval) == 1001.0  # still inside the schedule
    later = Pacer(60, path)
    assert later._reserve(1500.0, later.interval) == 1500.0  # the schedule lapsed: no wait


def test_a_hold_after_a_429_moves_every_caller_of_the_account(tmp_path: Path) -> None:
    path = tmp_path / "pacing" / "acct"
    one, other = Pacer(60, path), Pacer(60, path)
    one._reserve(1000.0, 0.0)
    one._reserve(1000.0 + 30, 0.0)  # what hold(30) books at t=1000
    assert other._reserve(1001.0, other.interval) == 1030.0
