"""Periodic sweeps: lost leases back to the queue, 24 h expiry, cancel stragglers, retention.

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
                await sweeps.purge_archived(now_us())
                last_purge = time.monotonic()
        except Exception:
            logger.exception("maintenance sweep failed; retrying")
        await asyncio.sleep(interval)
