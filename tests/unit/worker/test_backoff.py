"""Retry delays: exponential with jitter, capped, and never shorter than a retry-after hint."""

from __future__ import annotations

from batchyard.timeutil import MICROS_PER_SECOND
from batchyard.worker.backoff import backoff_micros


def seconds(attempt: int, retry_after: float | None = None) -> float:
    micros = backoff_micros(attempt, base_seconds=1.0, max_seconds=8.0, retry_after=retry_after)
    return micros / MICROS_PER_SECOND


def test_grows_exponentially_with_equal_jitter() -> None:
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0)]:
        delays = [seconds(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert max(delays) - min(delays) > ceiling / 10  # jittered, not fixed


def test_is_capped_at_max_seconds() -> None:
    assert all(seconds(30) <= 8.0 for _ in range(50))


def test_honours_retry_after_up_to_the_cap() -> None:
    assert seconds(1, retry_after=5.0) >= 5.0
    assert seconds(1, retry_after=500.0) <= 8.0
