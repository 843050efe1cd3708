"""Which queued requests go upstream now, and in which upstream Message Batches (no I/O).

The upstream takes at most 100,000 requests and 256 MB per batch, and every batch is one
create call with one set of headers, so requests are grouped by their batch's forwarded
headers, then cut in order (oldest first) wherever the next request would pass either
limit. A group goes now when it is full, or when its oldest request has waited
``max_wait`` (gathering trades latency for fewer, larger upstream batches), or when the
store offered as many as it was asked for (more are waiting than one gather takes: there is
nothing to wait for). The rest stays queued for a later gather.

A request too large for any batch on its own goes alone: the upstream judges it (its 413
becomes that request's ``errored`` result), so nothing is refused here on a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from batchyard.store.records import Candidate, Headers

#: ``{"requests":[`` and ``]}``.
_ENVELOPE_BYTES = 16
#: What one request adds beside its params: ``{"custom_id":"r<row>","params":`` ``},``.
_ITEM_BYTES = 64
#: The smallest params there are: ``{}``.
_SMALLEST_PARAMS = 2


@dataclass(frozen=True, slots=True)
class Limits:
    max_requests: int
    max_bytes: int
    #: Microseconds a request may wait for others to join its upstream batch.
    max_wait: int
    #: Bytes a request's params may grow by on the way (``model`` becomes the upstream's).
    growth: int = 0


def plan_batches(
    candidates: Sequence[Candidate], *, now: int, limits: Limits, offered_limit: int
) -> list[list[int]]:
    """Row ids per upstream batch to create now, from ``candidates`` (oldest first), of
    which the store offered at most ``offered_limit``."""
    more_waiting = len(candidates) >= offered_limit
    by_headers: dict[Headers, list[Candidate]] = {}
    for candidate in candidates:
        by_headers.setdefault(candidate.headers, []).append(candidate)
    groups: list[list[int]] = []
    for same_headers in by_headers.values():
        chunks = _cut(same_headers, limits)
        last = chunks[-1]
        waited = now - min(c.queued_since for c in last) >= limits.max_wait
        last_full = len(last) == limits.max_requests or _would_overflow(last, limits)
        if not (more_waiting or waited or last_full):
            chunks.pop()
        groups += [[c.row_id for c in chunk] for chunk in chunks]
    return groups


def _cut(candidates: list[Candidate], limits: Limits) -> list[list[Candidate]]:
    """``candidates`` in order, in chunks within both limits (an oversized one alone)."""
    chunks: list[list[Candidate]] = [[]]
    size = _ENVELOPE_BYTES
    for candidate in candidates:
        item = _item_bytes(candidate, limits)
        current = chunks[-1]
        if current and (len(current) == limits.max_requests or size + item > limits.max_bytes):
            chunks.append([])
            size = _ENVELOPE_BYTES
        chunks[-1].append(candidate)
        size += item
    return chunks


def _would_overflow(chunk: list[Candidate], limits: Limits) -> bool:
    """Whether the smallest possible request no longer fits: the chunk is full by size."""
    size = _ENVELOPE_BYTES + sum(_item_bytes(c, limits) for c in chunk)
    return size + _ITEM_BYTES + limits.growth + _SMALLEST_PARAMS > limits.max_bytes


def _item_bytes(candidate: Candidate, limits: Limits) -> int:
    return candidate.size + _ITEM_BYTES + limits.growth
