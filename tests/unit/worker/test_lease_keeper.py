"""The lease keeper on the in-memory store: held leases move forward, released ones do not."""

from __future__ import annotations

from batchyard.store import MEMORY_URL, open_store
from batchyard.store.records import NewBatch, NewRequest
from batchyard.timeutil import now_us
from batchyard.worker.lease_keeper import LeaseKeeper

HOUR = 3600 * 1_000_000


async def test_extends_what_it_holds_until_released() -> None:
    store = await open_store(MEMORY_URL)
    await store.keys.create_api_key("ws", "h", "hint", 0)
    workspace_id = await store.keys.workspace_for_key("h")
    assert workspace_id is not None
    now = now_us()
    batch = NewBatch("msgbatch_1", workspace_id, now, now + HOUR, now + 2 * HOUR)
    await store.batches.create_batch(batch, [NewRequest(f"r{i}", "m", b"{}") for i in range(3)])
    keeper = LeaseKeeper(store.queue, lease_seconds=3600)
    assert keeper.lease_until(now) == now + HOUR
    claimed = await store.queue.claim(limit=3, now=now, lease_until=now + 100_000)
    keeper.hold(claimed)
    keeper.release([(claimed[0].row_id, claimed[0].attempt)])
    assert [r.row_id for r in keeper.held()] == [r.row_id for r in claimed[1:]]

    await keeper.extend()
    # Half a second on, only the released request's short first lease has run out.
    lost = await store.sweeps.requeue_expired_leases(
        now + 500_000, max_attempts=4, exhausted=lambda: b"{}"
    )
    assert lost == 1
    assert await store.batches.count_states(1) == {"queued": 1, "running": 2}


async def test_letting_go_of_a_stale_attempt_keeps_the_newer_lease_of_the_same_request() -> None:
    """After a lost lease the same request can be held again under a newer attempt; writing
    the stale attempt's outcome must not stop the newer attempt's lease from being kept."""
    store = await open_store(MEMORY_URL)
    await store.keys.create_api_key("ws", "h", "hint", 0)
    workspace_id = await store.keys.workspace_for_key("h")
    assert workspace_id is not None
    now = now_us()
    batch = NewBatch("msgbatch_1", workspace_id, now, now + HOUR, now + 2 * HOUR)
    await store.batches.create_batch(batch, [NewRequest("r", "m", b"{}")])
    keeper = LeaseKeeper(store.queue, lease_seconds=3600)
    [stale] = await store.queue.claim(limit=1, now=now, lease_until=now + 1)
    keeper.hold([stale])
    await store.sweeps.requeue_expired_leases(now + 2, max_attempts=4, exhausted=lambda: b"{}")
    [current] = await store.queue.claim(limit=1, now=now + 3, lease_until=now + 100_000)
    keeper.hold([current])
    keeper.release([(stale.row_id, stale.attempt)])
    assert keeper.held() == [current]
    await keeper.extend()
    assert (
        await store.sweeps.requeue_expired_leases(
            now + 500_000, max_attempts=4, exhausted=lambda: b"{}"
        )
        == 0
    )
