"""Turning one engine call into a stored outcome: a result line, or a retry with backoff."""

from __future__ import annotations

import random

from batchyard import ids
from batchyard.protocol.batches import ErroredResult, SucceededResult, result_line
from batchyard.protocol.errors import ErrorDetail, ErrorResponse, ErrorType
from batchyard.protocol.messages import Message
from batchyard.timeutil import MICROS_PER_SECOND


def succeeded_line(custom_id: str, message: Message) -> bytes:
    """The ``succeeded`` line; batch usage is billed at the batch tier."""
    message.usage.service_tier = "batch"
    return result_line(custom_id, SucceededResult(message=message))


def errored_line(custom_id: str, error_type: ErrorType | str, message: str) -> bytes:
    error = ErrorResponse(error=ErrorDetail(type=error_type, message=message),
                          request_id=ids.request_id())
    return result_line(custom_id, ErroredResult(error=error))


def backoff_micros(attempt: int, *, base_seconds: float, max_seconds: float,
                   retry_after: float | None = None) -> int:
    """Exponential backoff with "equal jitter"; an engine's ``retry_after`` hint wins if longer.

    ``attempt`` is the attempt that just failed (1 for the first).
    """
    ceiling = min(max_seconds, base_seconds * 2 ** (attempt - 1))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, max_seconds))
    return int(delay * MICROS_PER_SECOND)
