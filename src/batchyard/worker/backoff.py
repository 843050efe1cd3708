"""Retry timing for failed engine calls."""

from __future__ import annotations

import random

from batchyard.timeutil import MICROS_PER_SECOND


def backoff_micros(
    attempt: int, *, base_seconds: float, max_seconds: float, retry_after: float | None = None
) -> int:
    """Exponential backoff with "equal jitter"; an engine's ``retry_after`` hint wins if longer.

    ``attempt`` is the attempt that just failed (1 for the first).
    """
    ceiling = min(max_seconds, base_seconds * 2 ** (attempt - 1))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, max_seconds))
    return int(delay * MICROS_PER_SECOND)
