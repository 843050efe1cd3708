"""The claim's sharing rule (:mod:`batchyard.store.fairness`) on every backend: workspaces
get equal shares of each claim, batches of a workspace equal shares of its share, and
``priority`` orders only a workspace's own batches."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest
from test_store_conformance import SECOND, T0, claim_all, new_batch, new_batch_for, workspace

from batchyard.errors import QueueFull
from batchyard.store.fairness import MAX_READY_BATCHES
from batchyard.store.protocols import Store
from batchyard.store.records import NewRequest, QueueLimit, Retry


async def test_workspaces_share_each_claim_equally_and_batches_their_workspaces_share(
    store: Store,
) -> None:
    a, b = await workspace(store, "a"), await workspace(store, "b")
    a1 = await new_batch(store, a, 50)
    a2 = await new_batch(store, a, 50)
    b1 = await new_batch(store, b, 50)
    claimed = await claim_all(store, limit=12)
    assert Counter(c.batch_seq for c in claimed) == {b1.seq: 6, a1.seq: 3, a2.seq: 3}
    for seq in (a1.seq, a2.seq, b1.seq):  # oldest first within each batch
        ids = [c.custom_id for c in claimed if c.batch_seq == seq]
        assert ids == sorted(ids) == [f"r{i:05d}" for i in range(len(ids))]


async def test_a_small_batch_is_claimed_whole_beside_a_big_one(store: Store) -> None:
    big = await new_batch(store, await workspace(store, "a"), 500)
    small = await new_batch(store, await workspace(store, "b"), 5)
    claimed = await claim_all(store, limit=64)
    # half of the claim is each workspace's share: all of the small batch, and no more than
    # half (plus one, for rounding) of the big one; the claim comes out short
    assert Counter(c.batch_seq for c in claimed) == {big.seq: 33, small.seq: 5}
    # and the worker is handed them in turns, not the big batch's first
    assert [c.batch_seq for c in claimed[:10]] == [big.seq, small.seq] * 5
    assert Counter(c.batch_seq for c in await claim_all(store, limit=64)) == {big.seq: 64}


async def test_one_batch_alone_is_claimed_oldest_first(store: Store) -> None:
    batch = await new_batch(store, await workspace(store, "a"), 20)
    claimed = await claim_all(store, limit=8)
    assert [c.custom_id for c in claimed] == [f"r{i:05d}" for i in range(8)]
    assert {c.batch_seq for c in claimed} == {batch.seq}


async def test_priority_orders_a_workspaces_own_batches_and_not_other_workspaces(
    store: Store,
) -> None:
    a, b = await workspace(store, "a"), await workspace(store, "b")
    low = await new_batch(store, a, 20)
    high = await new_batch(store, a, 3, priority=5)
    other = await new_batch(store, b, 20)
    claimed = await claim_all(store, limit=10)  # short: a's share is high's, which has 3
    assert Counter(c.batch_seq for c in claimed) == {other.seq: 6, high.seq: 3}
    later = await claim_all(store, limit=10)  # high has nothing due any more: low's turn
    assert Counter(c.batch_seq for c in later) == {other.seq: 5, low.seq: 5}


async def test_a_negative_priority_waits_for_its_workspaces_other_batches(store: Store) -> None:
    a = await workspace(store, "a")
    background = await new_batch(store, a, 5, priority=-1)
    normal = await new_batch(store, a, 5)
    claimed = await claim_all(store, limit=5)
    assert {c.batch_seq for c in claimed} == {normal.seq}
    assert {c.batch_seq for c in await claim_all(store)} == {background.seq}


async def test_a_batch_with_nothing_due_takes_no_share(store: Store) -> None:
    """A batch whose only queued request waits for its retry time is not ready: the claim
    goes to the others in full."""
    waiting = await new_batch(store, await workspace(store, "b"), 1)
    [first] = await claim_all(store)
    await store.queue.finish([], [Retry(first.row_id, first.attempt, T0 + 60 * SECOND)], T0)
    busy = await new_batch(store, await workspace(store, "a"), 30)
    claimed = await claim_all(store, limit=10)
    assert [c.batch_seq for c in claimed] == [busy.seq] * 10
    due = await claim_all(store, now=T0 + 60 * SECOND, limit=2)
    assert Counter(c.batch_seq for c in due) == {waiting.seq: 1, busy.seq: 1}


async def test_the_share_is_of_the_claimed_models_only(store: Store) -> None:
    sim = await new_batch(store, await workspace(store, "a"), 10)
    await new_batch(store, await workspace(store, "b"), 10, model="other")
    claimed = await claim_all(store, limit=10, models=["sim"])
    assert [c.batch_seq for c in claimed] == [sim.seq] * 10


async def test_a_workspace_with_many_batches_gets_no_more_than_one_with_one_batch(
    store: Store,
) -> None:
    """More ready batches than a claim looks at: the places go one per workspace in turn,
    so 300 small batches of A do not crowd out B's one."""
    a, b = await workspace(store, "a"), await workspace(store, "b")
    for _ in range(MAX_READY_BATCHES + 36):
        await new_batch(store, a, 3)
    single = await new_batch(store, b, 500)
    taken: Counter[bool] = Counter()
    for _ in range(5):
        taken.update(c.batch_seq == single.seq for c in await claim_all(store, limit=64))
    assert taken[True] == 5 * 32 and taken[False] >= 5 * 30


async def test_a_due_batch_is_found_among_many_waiting_for_their_retry(store: Store) -> None:
    a = await workspace(store, "a")
    for _ in range(MAX_READY_BATCHES + 6):
        await new_batch(store, a, 1)
    waiting = await claim_all(store) + await claim_all(store)  # 64 batches a claim at most
    assert len(waiting) == MAX_READY_BATCHES + 6
    later = T0 + 60 * SECOND
    await store.queue.finish([], [Retry(c.row_id, c.attempt, later) for c in waiting], T0)
    due = await new_batch(store, a, 1)
    for _ in range(5):  # every claim finds it (and takes it the first time)
        found = await claim_all(store, limit=10)
        assert [c.batch_seq for c in found] == [due.seq]
        await store.queue.finish([], [Retry(c.row_id, c.attempt, T0) for c in found], T0)


async def test_more_ready_batches_than_one_claim_looks_at_are_all_served(store: Store) -> None:
    a = await workspace(store, "a")
    count = MAX_READY_BATCHES + 6
    for _ in range(count):
        await new_batch(store, a, 1)
    first = await claim_all(store)
    assert len(first) == MAX_READY_BATCHES
    rest = await claim_all(store)
    assert len(rest) == count - MAX_READY_BATCHES
    assert len({c.batch_seq for c in first + rest}) == count
    assert await claim_all(store) == []


async def test_a_queue_limit_counts_the_workspaces_queued_requests_of_the_model(
    store: Store,
) -> None:
    a, b = await workspace(store, "a"), await workspace(store, "b")
    first = await new_batch(store, a, 4)
    await claim_all(store, limit=1)  # running: no longer queued
    await new_batch(store, b, 10)  # another workspace's queue
    await new_batch(store, a, 10, model="other")  # another model
    limit = QueueLimit("sim", ("sim", "sim-alias"), limit=6, adding=4)
    with pytest.raises(QueueFull) as caught:
        await store.batches.create_batch(
            replace(new_batch_for(a), queue_limits=(limit,)), [NewRequest("x", "sim", b"{}")]
        )
    assert "has 3 requests of model 'sim' queued and this batch adds 4" in str(caught.value)
    page = await store.batches.list_batches(a, limit=10, after_id=None, before_id=None)
    assert page is not None and len(page.batches) == 2  # the refused create left nothing
    fits = replace(limit, adding=3)
    made = await store.batches.create_batch(
        replace(new_batch_for(a), queue_limits=(fits,)),
        [NewRequest(f"y{i}", "sim-alias", b"{}") for i in range(3)],
    )
    assert made.total == 3
    assert first.seq != made.seq
