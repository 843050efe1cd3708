"""Times are stored as integer microseconds since the Unix epoch and shown as RFC 3339 UTC."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

MICROS_PER_SECOND = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_us() -> int:
    return time.time_ns() // 1000


def rfc3339(micros: int) -> str:
    """``2024-09-24T18:37:24.100435Z``: microseconds and ``Z``, as in Anthropic's docs."""
    moment = _EPOCH + timedelta(microseconds=micros)  # exact, no float rounding
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def optional_rfc3339(micros: int | None) -> str | None:
    return None if micros is None else rfc3339(micros)
