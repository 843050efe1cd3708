"""A fresh in-memory store holding one batch of queued requests, for worker unit tests."""

from __future__ import annotations

from batchyard.store import MEMORY_URL, Store, open_store
from batchyard.store.records import BatchRecord, NewBatch, NewRequest

HOUR = 3600 * 1_000_000


async def store_with_batch(n: int, now: int) -> tuple[Store, BatchRecord]:
    """``n`` requests ``r0``… of model ``m`` (params ``{}``), created at ``now``."""
    store = await open_store(MEMORY_URL)
    await store.keys.create_api_key("ws", "h", "hint", now)
    workspace_id = await store.keys.workspace_for_key("h")
    assert workspace_id is not None
    batch = NewBatch("msgbatch_1", workspace_id, now, now + HOUR, now + 2 * HOUR)
    items = [NewRequest(f"r{i}", "m", b"{}") for i in range(n)]
    return store, await store.batches.create_batch(batch, items)
