"""The one rule of how an unstarted request ends: :func:`batchyard.store.records.closing_as`."""

from __future__ import annotations

import pytest

from batchyard.store.records import BatchStatus, UnstartedState, closing_as

EXPIRES = 1_000


@pytest.mark.parametrize(
    ("status", "now", "expected"),
    [
        # An open batch runs its requests until expires_at, and not at expires_at.
        ("in_progress", EXPIRES - 1, None),
        ("in_progress", EXPIRES, "expired"),
        ("in_progress", EXPIRES + 1, "expired"),
        # A canceling batch cancels them, unless they expired before anyone canceled them.
        ("canceling", EXPIRES - 1, "canceled"),
        ("canceling", EXPIRES, "expired"),
        ("canceling", EXPIRES + 1, "expired"),
        # An ended batch has nothing left to settle, expired or not.
        ("ended", EXPIRES - 1, None),
        ("ended", EXPIRES, None),
        ("ended", EXPIRES + 1, None),
    ],
)
def test_closing_as(status: BatchStatus, now: int, expected: UnstartedState | None) -> None:
    assert closing_as(status, EXPIRES, now) == expected
