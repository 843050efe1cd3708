"""Periodic sweeps: lost leases back to the queue, 24 h expiry, cancel stragglers, retention.

Every sweep is a guarded set-based statement, so any number of processes may run them at
once without double effects (a request is only moved from the state the sweep expects).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from batchyard.config import Settings
from batchyard.protocol.batches import errored_line
from batchyard.store.sql import SqlStore
from batchyard.timeutil import now_us

logger = logging.getLogger("batchyard.maintenance")

_PURGE_EVERY_SECONDS = 300.0


def _out_of_attempts(custom_id: str) -> bytes:
    return errored_line(
        custom_id, "api_error", "the request's worker stopped responding on every attempt"
    )


async def sweep_once(store: SqlStore, settings: Settings) -> int:
    """One pass of the frequent sweeps; returns how many requests changed state."""
    now = now_us()
    changed = await store.requeue_expired_leases(
        now, max_attempts=settings.max_attempts, error_line=_out_of_attempts
    )
    changed += await store.expire_and_cancel_open_batches(now)
    return changed


async def run_maintenance(
    store: SqlStore, settings: Settings, on_requeued: Callable[[], None] = lambda: None
) -> None:
    """Run the sweeps until cancelled. ``on_requeued`` wakes a local dispatcher."""
    interval = max(settings.poll_interval_seconds, 0.5)
    last_purge = 0.0
    while True:
        try:
            if await sweep_once(store, settings):
                on_requeued()
            if time.monotonic() - last_purge > _PURGE_EVERY_SECONDS:
                await store.purge_archived(now_us())
                last_purge = time.monotonic()
        except Exception:
            logger.exception("maintenance sweep failed; retrying")
        await asyncio.sleep(interval)
