"""Periodic sweeps: lost leases back to the queue, 24 h expiry, cancel stragglers, retention,
expired files.

Every sweep is a guarded set-based change in the store, so any number of processes may run
them at once without double effects (a request only moves from the state the sweep expects).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from batchyard.config import Settings
from batchyard.protocol import outcomes
from batchyard.store.protocols import SweepStore
from batchyard.timeutil import now_us

logger = logging.getLogger("batchyard.maintenance")

_PURGE_EVERY_SECONDS = 300.0
#: Archived requests (with their outcomes) deleted per transaction.
REQUESTS_PER_PURGE = 2000
#: How long one round of the maintenance loop may spend on retention.
_PURGE_BUDGET_SECONDS = 2.0
#: Expired files deleted per transaction: each may be 200 MB of chunks.
_FILES_PER_PURGE = 20


def _out_of_attempts() -> bytes:
    return outcomes.encode(
        outcomes.errored("api_error", "the request's worker stopped responding on every attempt")
    )


async def sweep_once(sweeps: SweepStore, settings: Settings) -> int:
    """One pass of the frequent sweeps; returns how many requests changed state."""
    now = now_us()
    changed = await sweeps.requeue_expired_leases(
        now, max_attempts=settings.max_attempts, exhausted=_out_of_attempts
    )
    changed += await sweeps.settle_closing_batches(now)
    return changed


async def purge_archived(sweeps: SweepStore, now: int) -> bool:
    """Remove what retention allows by ``now``, :data:`REQUESTS_PER_PURGE` requests per
    transaction (a 100k batch is never one huge DELETE holding the database, and other
    writers get in between the steps), for at most :data:`_PURGE_BUDGET_SECONDS`, so the
    lease and expiry sweeps of this loop are not held up; ``True`` once nothing is left."""
    deadline = time.monotonic() + _PURGE_BUDGET_SECONDS
    while await sweeps.purge_archived(now, limit=REQUESTS_PER_PURGE):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0)
    return True


async def purge_expired_files(sweeps: SweepStore, now: int) -> int:
    """Delete every file expired by ``now``, a bounded number per transaction, so no one
    transaction holds the database (SQLite's one writer) for long."""
    total = 0
    while True:
        deleted = await sweeps.purge_expired_files(now, limit=_FILES_PER_PURGE)
        total += deleted
        if deleted < _FILES_PER_PURGE:
            return total


async def run_maintenance(
    sweeps: SweepStore, settings: Settings, on_requeued: Callable[[], None] = lambda: None
) -> None:
    """Run the sweeps until cancelled. ``on_requeued`` wakes a local dispatcher."""
    interval = max(settings.poll_interval_seconds, 0.5)
    last_purge = 0.0
    while True:
        try:
            if await sweep_once(sweeps, settings):
                on_requeued()
            if time.monotonic() - last_purge > _PURGE_EVERY_SECONDS:
                finished = await purge_archived(sweeps, now_us())
                await purge_expired_files(sweeps, now_us())
                # Unfinished: go on at the next round, after the other sweeps.
                last_purge = time.monotonic() if finished else 0.0
        except Exception:
            logger.exception("maintenance sweep failed; retrying")
        await asyncio.sleep(interval)
