"""The lease keeper on the in-memory store: held leases move forward, released ones do not."""

from __future__ import annotations

from queued import HOUR, store_with_batch

from batchyard.timeutil import now_us
from batchyard.worker.lease_keeper import LeaseKeeper


async def test_extends_what_it_holds_until_released() -> None:
    now = now_us()
    store, _ = await store_with_batch(3, now)
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
    now = now_us()
    store, _ = await store_with_batch(1, now)
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
