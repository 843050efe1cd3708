"""Outcomes of finished requests, written to the store in batches.

Per-request commits would cap throughput at the database's commit rate, so outcomes wait
here and go out in one transaction per flush: as soon as ``max_size`` are waiting, else
``max_delay`` seconds after the first one arrived. A flush that fails puts its outcomes back
in front of the newer ones and is tried again after ``retry_pause``; nothing is dropped,
and the leases of those requests keep being extended meanwhile (they are still held).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from batchyard.store.protocols import QueueStore
from batchyard.store.records import Finished, Retry
from batchyard.timeutil import now_us

logger = logging.getLogger("batchyard.worker")

#: Called after a flush with what was written (so their requests can be let go).
OnFlushed = Callable[[Sequence[Finished], Sequence[Retry]], None]


class OutcomeBuffer:
    def __init__(
        self,
        queue: QueueStore,
        *,
        max_size: int,
        max_delay: float,
        retry_pause: float,
        on_flushed: OnFlushed,
    ) -> None:
        self._queue = queue
        self._max_size = max_size
        self._max_delay = max_delay
        self._retry_pause = retry_pause
        self._on_flushed = on_flushed
        self._finished: list[Finished] = []
        self._retries: list[Retry] = []
        self._ready = asyncio.Event()

    def add(self, outcome: Finished | Retry) -> None:
        if isinstance(outcome, Retry):
            self._retries.append(outcome)
        else:
            self._finished.append(outcome)
        self._ready.set()

    def waiting(self) -> set[tuple[int, int]]:
        """``(row_id, attempt)`` of every outcome waiting to be written."""
        return {(f.row_id, f.attempt) for f in self._finished} | {
            (r.row_id, r.attempt) for r in self._retries
        }

    async def run(self) -> None:
        """Flush on size or on the timer, until cancelled."""
        while True:
            await self._ready.wait()
            if len(self._finished) < self._max_size:
                await asyncio.sleep(self._max_delay)
            self._ready.clear()
            if not await self.flush():
                await asyncio.sleep(self._retry_pause)

    async def flush(self) -> bool:
        """Write everything waiting in one transaction; ``False`` (and kept) if that failed."""
        finished, self._finished = self._finished, []
        retries, self._retries = self._retries, []
        if not (finished or retries):
            return True
        try:
            applied = await self._queue.finish(finished, retries, now_us())
        except asyncio.CancelledError:  # shutting down: keep them for the final flush
            self._put_back(finished, retries)
            raise
        except Exception:
            logger.exception(
                "recording %d outcomes failed; will retry", len(finished) + len(retries)
            )
            self._put_back(finished, retries)
            return False
        if applied < len(finished):
            # Their leases ran out and another attempt holds (or finished) those requests.
            logger.warning(
                "%d outcomes were discarded: their attempt no longer held the request",
                len(finished) - applied,
            )
        self._on_flushed(finished, retries)
        return True

    def _put_back(self, finished: list[Finished], retries: list[Retry]) -> None:
        self._finished[:0] = finished
        self._retries[:0] = retries
        self._ready.set()
