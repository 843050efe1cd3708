"""The leases this process holds, extended until their requests' outcomes are written.

Every claimed request holds a lease until ``lease_seconds`` from its claim. While this process
is alive it pushes the lease forward every third of that, for every request it still holds
(running, queued for a lane, or waiting in the outcome buffer). If the process dies, the
leases run out and a maintenance sweep in any process puts the requests back in the queue;
the attempt number bumped by the next claim fences off any late write from this process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from batchyard.store.protocols import QueueStore
from batchyard.store.records import ClaimedRequest
from batchyard.timeutil import MICROS_PER_SECOND, now_us

logger = logging.getLogger("batchyard.worker")


class LeaseKeeper:
    def __init__(self, queue: QueueStore, lease_seconds: float) -> None:
        self._queue = queue
        self._lease_micros = int(lease_seconds * MICROS_PER_SECOND)
        self._interval = lease_seconds / 3
        #: Keyed by ``(row_id, attempt)``: after a lost lease the same row may be held again
        #: under a newer attempt, and letting go of the old one must not drop the new one.
        self._held: dict[tuple[int, int], ClaimedRequest] = {}

    def lease_until(self, now: int) -> int:
        """When a lease taken (or extended) at ``now`` runs out."""
        return now + self._lease_micros

    def hold(self, requests: Iterable[ClaimedRequest]) -> None:
        for request in requests:
            self._held[request.row_id, request.attempt] = request

    def release(self, leases: Iterable[tuple[int, int]]) -> None:
        """Stop extending these ``(row_id, attempt)`` leases (their outcomes are written)."""
        for lease in leases:
            self._held.pop(lease, None)

    def held(self) -> list[ClaimedRequest]:
        return list(self._held.values())

    async def run(self) -> None:
        """Extend every held lease each third of the lease time, until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            await self.extend()

    async def extend(self) -> None:
        pairs = list(self._held)
        if not pairs:
            return
        try:
            await self._queue.extend_leases(pairs, self.lease_until(now_us()))
        except Exception:
            logger.exception("extending %d leases failed", len(pairs))
