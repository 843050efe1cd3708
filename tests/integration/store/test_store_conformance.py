"""Every store implementation against the contract of :mod:`batchyard.store.protocols`.

The invariants are checked directly: acknowledged batches are atomic, a request is never
claimed twice, a stale completion is fenced off and an outcome is written exactly once,
counts always add up, a batch ends exactly once and queues its webhook events in the same
change, and every lookup is scoped to its workspace.

Each test runs on every backend of ``conftest.py`` (``-k memory`` picks one). The few checks
that read tables past the store (orphan rows) run on the SQL backends only; on the memory
store the same thing is asserted through the store's own reads.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError
from store_backends import Backend

from batchyard import ids
from batchyard.errors import IdempotencyKeyTaken
from batchyard.store.protocols import Store
from batchyard.store.records import (
    BatchRecord,
    ClaimedRequest,
    FinalState,
    Finished,
    NewBatch,
    NewRequest,
    Retry,
)

SECOND = 1_000_000
HOUR = 3600 * SECOND
#: A fixed "now" far from the real clock: every time the store sees comes from the test.
T0 = 1_800_000_000 * SECOND
#: What ``requeue_expired_leases`` stores for a request out of attempts.
OUT_OF_ATTEMPTS = b'{"outcome":"errored","type":"api_error","message":"out of attempts"}'

# ------------------------------------------------------------------------------ helpers


async def workspace(store: Store, name: str) -> int:
    key_hash = ids.hash_api_key(f"key-{name}")
    await store.keys.create_api_key(name, key_hash, "sk-by-test", T0)
    workspace_id = await store.keys.workspace_for_key(key_hash)
    assert workspace_id is not None
    return workspace_id


def params_for(custom_id: str) -> bytes:
    return json.dumps(
        {"model": "sim", "max_tokens": 4, "messages": [{"role": "user", "content": custom_id}]}
    ).encode()


def new_batch_for(
    workspace_id: int,
    *,
    created_at: int = T0,
    expires_in: int = 24 * HOUR,
    archives_in: int = 29 * 24 * HOUR,
    idempotency_key: str | None = None,
    body_digest: str | None = None,
    priority: int = 0,
) -> NewBatch:
    return NewBatch(
        id=ids.batch_id(),
        workspace_id=workspace_id,
        created_at=created_at,
        expires_at=created_at + expires_in,
        archives_at=created_at + archives_in,
        idempotency_key=idempotency_key,
        body_digest=body_digest,
        priority=priority,
    )


async def new_batch(
    store: Store,
    workspace_id: int,
    n: int = 3,
    *,
    created_at: int = T0,
    expires_in: int = 24 * HOUR,
    archives_in: int = 29 * 24 * HOUR,
    custom_ids: Sequence[str] | None = None,
    model: str = "sim",
    priority: int = 0,
) -> BatchRecord:
    custom_ids = list(custom_ids) if custom_ids is not None else [f"r{i:05d}" for i in range(n)]
    record = await store.batches.create_batch(
        new_batch_for(
            workspace_id,
            created_at=created_at,
            expires_in=expires_in,
            archives_in=archives_in,
            priority=priority,
        ),
        [NewRequest(cid, model, params_for(cid)) for cid in custom_ids],
    )
    await assert_counts(store, record)
    return record


async def reload(store: Store, record: BatchRecord) -> BatchRecord:
    fresh = await store.batches.get_batch(record.workspace_id, record.id)
    assert fresh is not None
    return fresh


async def assert_counts(store: Store, record: BatchRecord) -> BatchRecord:
    """Counters equal a recount of request states and sum to ``total``; returns the batch."""
    batch = await reload(store, record)
    states = await store.batches.count_states(batch.seq)
    assert (
        batch.processing + batch.succeeded + batch.errored + batch.canceled + batch.expired
        == batch.total
    )
    assert sum(states.values()) == batch.total
    unfinished = ("queued", "running", "submitted")
    assert batch.processing == sum(states.get(name, 0) for name in unfinished)
    for name in ("succeeded", "errored", "canceled", "expired"):
        assert getattr(batch, name) == states.get(name, 0), (name, batch, states)
    assert (batch.status == "ended") == (batch.processing == 0)
    assert (batch.ended_at is not None) == (batch.status == "ended")
    return batch


def outcome(request: ClaimedRequest, state: str = "succeeded") -> bytes:
    """Outcome bytes naming the request and attempt, so a test sees which write won."""
    return json.dumps(
        {"custom_id": request.custom_id, "outcome": state, "attempt": request.attempt}
    ).encode()


def done(request: ClaimedRequest, state: FinalState = "succeeded") -> Finished:
    return Finished(
        row_id=request.row_id,
        attempt=request.attempt,
        state=state,
        outcome=outcome(request, state),
        input_tokens=3,
        output_tokens=5,
    )


async def claim_all(
    store: Store,
    *,
    now: int = T0,
    lease: int = 60 * SECOND,
    limit: int = 1000,
    models: Sequence[str] | None = None,
    other_models: bool = False,
) -> list[ClaimedRequest]:
    return await store.queue.claim(
        limit=limit, now=now, lease_until=now + lease, models=models, other_models=other_models
    )


async def outcomes(
    store: Store, record: BatchRecord, *, page_size: int = 2
) -> dict[str, tuple[str, bytes | None]]:
    found: dict[str, tuple[str, bytes | None]] = {}
    async for page in store.batches.iter_outcomes(record.seq, page_size=page_size):
        for stored in page:
            assert stored.custom_id not in found
            found[stored.custom_id] = (stored.state, stored.outcome)
    return found


def out_of_attempts() -> bytes:
    return OUT_OF_ATTEMPTS


async def requeue(store: Store, now: int, *, max_attempts: int = 5) -> int:
    return await store.sweeps.requeue_expired_leases(
        now, max_attempts=max_attempts, exhausted=out_of_attempts
    )


# ------------------------------------------------------------------------------ create


async def test_create_batch_returns_in_progress_record_with_all_requests_queued(
    store: Store,
) -> None:
    ws = await workspace(store, "a")
    record = await new_batch(store, ws, 4)
    assert (record.status, record.total, record.processing) == ("in_progress", 4, 4)
    assert (record.succeeded, record.errored, record.canceled, record.expired) == (0,) * 4
    assert record.ended_at is None and record.cancel_initiated_at is None
    assert await store.batches.count_states(record.seq) == {"queued": 4}
    assert await reload(store, record) == record


async def test_create_batch_stores_params_verbatim(store: Store) -> None:
    record = await new_batch(store, await workspace(store, "a"), custom_ids=["x", "y"])
    claimed = await claim_all(store)
    assert {(c.custom_id, c.params, c.batch_seq) for c in claimed} == {
        ("x", params_for("x"), record.seq),
        ("y", params_for("y"), record.seq),
    }


async def test_create_batch_failure_leaves_nothing_behind(store: Store, backend: Backend) -> None:
    """A duplicate ``custom_id`` in the last of many requests refuses the whole create: no
    batch, and none of the requests before it (on SQL the first 10 000 go in an earlier
    statement of the same transaction)."""
    custom_ids = [f"r{i:05d}" for i in range(10_050)] + ["r00007"]
    ws = await workspace(store, "a")
    kept = await new_batch(store, ws, 2)
    refused = new_batch_for(ws, created_at=T0 + 1, expires_in=HOUR, archives_in=2 * HOUR)
    with pytest.raises((IntegrityError, ValueError)):
        await store.batches.create_batch(
            refused, [NewRequest(cid, "sim", b"{}") for cid in custom_ids]
        )
    assert await store.batches.get_batch(ws, refused.id) is None
    page = await store.batches.list_batches(ws, limit=100, after_id=None, before_id=None)
    assert page is not None and [b.id for b in page.batches] == [kept.id]
    await assert_counts(store, kept)
    # The store still works after the refused create.
    later = await new_batch(store, ws, 1)
    assert later.seq != kept.seq
    # Nothing of the refused create can be claimed: only the 3 requests that were kept.
    assert len(await claim_all(store, now=T0 + 2)) == 3
    if backend.is_sql:
        counts = await backend.row_counts()
        assert (counts["batches"], counts["requests"]) == (2, 3)


async def test_same_custom_ids_in_different_batches_are_fine(store: Store) -> None:
    ws = await workspace(store, "a")
    first = await new_batch(store, ws, custom_ids=["same"])
    second = await new_batch(store, ws, custom_ids=["same"])
    assert first.id != second.id
    assert len(await claim_all(store)) == 2


async def test_idempotency_key_is_unique_per_workspace(store: Store) -> None:
    ws, other_ws = await workspace(store, "a"), await workspace(store, "b")
    items = [NewRequest("only", "sim", params_for("only"))]
    first = await store.batches.create_batch(
        new_batch_for(ws, idempotency_key="key-1", body_digest="digest-1"), items
    )
    assert await store.batches.find_idempotent(ws, "key-1") == (first, "digest-1")
    assert await store.batches.find_idempotent(ws, "key-2") is None
    assert await store.batches.find_idempotent(other_ws, "key-1") is None

    replay = new_batch_for(ws, idempotency_key="key-1", body_digest="digest-2")
    with pytest.raises(IdempotencyKeyTaken):
        await store.batches.create_batch(replay, items)
    assert await store.batches.get_batch(ws, replay.id) is None
    page = await store.batches.list_batches(ws, limit=10, after_id=None, before_id=None)
    assert page is not None and [b.id for b in page.batches] == [first.id]
    assert await store.batches.find_idempotent(ws, "key-1") == (first, "digest-1")

    # The same key in another workspace is another key; batches without a key never clash.
    theirs_new = new_batch_for(other_ws, idempotency_key="key-1")
    theirs = await store.batches.create_batch(theirs_new, items)
    assert await store.batches.find_idempotent(other_ws, "key-1") == (theirs, None)
    await store.batches.create_batch(new_batch_for(ws), items)
    await store.batches.create_batch(new_batch_for(ws), items)
    assert len(await claim_all(store)) == 4


# ------------------------------------------------------------------------------ claim


async def test_claim_leases_oldest_first_and_bumps_attempt(store: Store) -> None:
    """Within a batch, oldest first; two batches share the claim, one of each in turn (the
    rest of the sharing is in ``test_fair_claims.py``)."""
    ws = await workspace(store, "a")
    first = await new_batch(store, ws, 3)
    second = await new_batch(store, ws, 3)
    claimed = await claim_all(store, limit=4)
    assert [c.batch_seq for c in claimed] == [first.seq, second.seq] * 2
    assert [c.custom_id for c in claimed] == ["r00000", "r00000", "r00001", "r00001"]
    assert {c.attempt for c in claimed} == {1}
    rest = await claim_all(store)
    assert [(c.batch_seq, c.custom_id) for c in rest] == [
        (first.seq, "r00002"),
        (second.seq, "r00002"),
    ]
    assert await store.batches.count_states(first.seq) == {"running": 3}
    batch = await assert_counts(store, first)
    assert batch.processing == 3  # running still counts as processing


async def test_claim_respects_not_before(store: Store) -> None:
    await new_batch(store, await workspace(store, "a"), 1)
    [claimed] = await claim_all(store)
    retry = Retry(claimed.row_id, claimed.attempt, not_before=T0 + 10 * SECOND)
    await store.queue.finish([], [retry], T0)
    assert await claim_all(store, now=T0 + 9 * SECOND) == []
    [again] = await claim_all(store, now=T0 + 10 * SECOND)
    assert (again.row_id, again.attempt) == (claimed.row_id, 2)


async def test_requeued_request_keeps_its_place_in_line(store: Store) -> None:
    """Oldest first is by row: a retried request goes before later ones, once it is due."""
    await new_batch(store, await workspace(store, "a"), 3)
    first, *_ = await claim_all(store, limit=1)
    await store.queue.finish([], [Retry(first.row_id, first.attempt, not_before=T0)], T0)
    again = await claim_all(store, now=T0 + 1, limit=2)
    assert [c.custom_id for c in again] == ["r00000", "r00001"]
    assert [c.attempt for c in again] == [2, 1]


async def test_unstarted_retry_gives_the_attempt_back(store: Store) -> None:
    record = await new_batch(store, await workspace(store, "a"), 1)
    [claimed] = await claim_all(store)
    unstarted = Retry(claimed.row_id, claimed.attempt, not_before=T0, unstarted=True)
    await store.queue.finish([], [unstarted], T0)
    assert await store.batches.count_states(record.seq) == {"queued": 1}
    [again] = await claim_all(store, now=T0 + 1)
    assert (again.row_id, again.attempt) == (claimed.row_id, 1)
    # The attempt given back cannot write: the new claim holds the same number, and only
    # one outcome is stored.
    assert await store.queue.finish([done(again)], [], T0 + 2) == 1
    assert await store.queue.finish([done(claimed)], [], T0 + 3) == 0
    assert await outcomes(store, record) == {"r00000": ("succeeded", outcome(again))}


async def test_claim_takes_only_in_progress_unexpired_batches(store: Store) -> None:
    ws = await workspace(store, "a")
    canceling = await new_batch(store, ws, 2)
    [running] = await claim_all(store, limit=1)
    assert running.batch_seq == canceling.seq
    await store.batches.cancel_batch(ws, canceling.id, T0)
    assert (await reload(store, canceling)).status == "canceling"
    ended = await new_batch(store, ws, 2)
    await store.batches.cancel_batch(ws, ended.id, T0)
    assert (await reload(store, ended)).status == "ended"
    expiring = await new_batch(store, ws, 2, expires_in=HOUR)
    open_batch = await new_batch(store, ws, 2)
    claimed = await claim_all(store, now=T0 + HOUR)
    assert {c.batch_seq for c in claimed} == {open_batch.seq}
    assert len(claimed) == 2
    assert await store.batches.count_states(expiring.seq) == {"queued": 2}


async def test_claim_by_model_and_other_models(store: Store) -> None:
    ws = await workspace(store, "a")
    alpha = await new_batch(store, ws, 2, model="alpha")
    beta = await new_batch(store, ws, 2, model="beta")
    odd = await new_batch(store, ws, 1, model="")
    assert {c.batch_seq for c in await claim_all(store, models=["beta"])} == {beta.seq}
    assert await claim_all(store, models=["beta"]) == []
    unserved = await claim_all(store, models=["alpha", "beta"], other_models=True)
    assert [c.batch_seq for c in unserved] == [odd.seq]
    assert await claim_all(store, models=[]) == []
    rest = await claim_all(store, models=[], other_models=True)
    assert [c.batch_seq for c in rest] == [alpha.seq, alpha.seq]


def _assert_disjoint_and_complete(rounds: list[list[ClaimedRequest]], expected: int) -> None:
    claimed_ids = [c.row_id for batch in rounds for c in batch]
    duplicates = [i for i, n in Counter(claimed_ids).items() if n > 1]
    assert duplicates == []
    assert len(claimed_ids) == expected


async def test_concurrent_claims_on_one_store_never_overlap(store: Store) -> None:
    ws = await workspace(store, "a")
    for _ in range(3):
        await new_batch(store, ws, 100)
    rounds: list[list[ClaimedRequest]] = []
    while True:
        got = await asyncio.gather(*(claim_all(store, limit=13) for _ in range(8)))
        rounds.extend(got)
        if not any(got):
            break
    _assert_disjoint_and_complete(rounds, 300)


async def test_concurrent_claims_from_two_stores_on_one_database_never_overlap(
    store: Store, backend: Backend
) -> None:
    """Two processes' worth of pools: two stores opened on the same database."""
    ws = await workspace(store, "a")
    for _ in range(3):
        await new_batch(store, ws, 100)
    async with backend.another_handle(store) as other:
        rounds: list[list[ClaimedRequest]] = []
        while True:
            got = await asyncio.gather(
                *(claim_all(owner, limit=11) for owner in [store, other] * 4)
            )
            rounds.extend(got)
            if not any(got):
                break
    _assert_disjoint_and_complete(rounds, 300)


# ------------------------------------------------------------------------------ finish


async def test_finish_writes_outcomes_and_ends_the_batch_exactly_once(store: Store) -> None:
    record = await new_batch(store, await workspace(store, "a"), 3)
    a, b, c = await claim_all(store)
    assert await store.queue.finish([done(a), done(b, "errored")], [], T0 + 1) == 2
    batch = await assert_counts(store, record)
    assert (batch.status, batch.succeeded, batch.errored, batch.processing) == (
        "in_progress",
        1,
        1,
        1,
    )
    assert await store.queue.finish([done(c)], [], T0 + 2) == 1
    batch = await assert_counts(store, record)
    assert (batch.status, batch.ended_at, batch.succeeded) == ("ended", T0 + 2, 2)
    # Replaying the same outcomes changes nothing, and ended_at stays put.
    assert await store.queue.finish([done(a), done(c)], [], T0 + 3) == 0
    assert await assert_counts(store, record) == batch
    assert await outcomes(store, record) == {
        "r00000": ("succeeded", outcome(a)),
        "r00001": ("errored", outcome(b, "errored")),
        "r00002": ("succeeded", outcome(c)),
    }


async def test_retry_requeues_with_the_same_fence(store: Store) -> None:
    record = await new_batch(store, await workspace(store, "a"), 1)
    [first] = await claim_all(store)
    stale = Retry(first.row_id, first.attempt + 1, not_before=T0)
    await store.queue.finish([], [stale], T0)
    assert await store.batches.count_states(record.seq) == {"running": 1}
    await store.queue.finish([], [Retry(first.row_id, first.attempt, not_before=T0)], T0)
    assert await store.batches.count_states(record.seq) == {"queued": 1}
    await assert_counts(store, record)


async def test_stale_completion_after_requeue_and_reclaim_is_discarded(store: Store) -> None:
    """Fencing: worker 1's lease runs out, the request is re-queued and re-claimed by worker
    2; worker 1's late completion (old attempt) is dropped whether it arrives while the
    request is queued, running again, or already finished, and one outcome is written."""
    record = await new_batch(store, await workspace(store, "a"), 2)
    first, other = await claim_all(store, lease=5 * SECOND)
    await store.queue.extend_leases([(other.row_id, other.attempt)], T0 + HOUR)
    assert await requeue(store, T0 + 6 * SECOND) == 1
    assert await store.queue.finish([done(first)], [], T0 + 7 * SECOND) == 0  # while queued
    await assert_counts(store, record)
    [second] = await claim_all(store, now=T0 + 8 * SECOND)
    assert (second.row_id, second.attempt) == (first.row_id, first.attempt + 1)
    assert await store.queue.finish([done(first)], [], T0 + 9 * SECOND) == 0  # re-claimed
    assert await store.batches.count_states(record.seq) == {"running": 2}
    assert await store.queue.finish([done(second, "errored")], [], T0 + 10 * SECOND) == 1
    assert await store.queue.finish([done(first), done(second)], [], T0 + 11 * SECOND) == 0
    batch = await assert_counts(store, record)
    assert (batch.errored, batch.succeeded, batch.processing) == (1, 0, 1)
    found = await outcomes(store, record)
    assert found[first.custom_id] == ("errored", outcome(second, "errored"))
    assert found[other.custom_id] == ("running", None)


async def test_a_stale_and_a_current_outcome_of_one_request_in_one_finish(store: Store) -> None:
    """A worker that lost a lease and re-claimed the same request may flush both attempts'
    outcomes together: only the current attempt's is written, and nothing else fails."""
    record = await new_batch(store, await workspace(store, "a"), 2)
    first, other = await claim_all(store, lease=5 * SECOND)
    await store.queue.extend_leases([(other.row_id, other.attempt)], T0 + HOUR)
    assert await requeue(store, T0 + 6 * SECOND) == 1
    [second] = await claim_all(store, now=T0 + 7 * SECOND)
    both = [done(first), done(second), done(other)]  # the same state: one statement
    assert await store.queue.finish(both, [], T0 + 8 * SECOND) == 2
    batch = await assert_counts(store, record)
    assert (batch.status, batch.succeeded, batch.errored) == ("ended", 2, 0)
    found = await outcomes(store, record)
    assert found[first.custom_id] == ("succeeded", outcome(second, "succeeded"))


async def test_extend_leases_keeps_a_live_request_from_being_requeued(store: Store) -> None:
    record = await new_batch(store, await workspace(store, "a"), 1)
    [claimed] = await claim_all(store, lease=5 * SECOND)
    await store.queue.extend_leases([(claimed.row_id, claimed.attempt + 1)], T0 + HOUR)  # fence
    await store.queue.extend_leases([(claimed.row_id, claimed.attempt)], T0 + 20 * SECOND)
    assert await requeue(store, T0 + 10 * SECOND) == 0
    assert await requeue(store, T0 + 21 * SECOND) == 1
    assert await store.batches.count_states(record.seq) == {"queued": 1}


# ------------------------------------------------------------------------------ sweeps


async def test_requeue_expired_leases_retries_then_errors_out_of_attempts(store: Store) -> None:
    record = await new_batch(store, await workspace(store, "a"), 1)
    now = T0
    for attempt in (1, 2):
        [claimed] = await claim_all(store, now=now, lease=SECOND)
        assert claimed.attempt == attempt
        now += 2 * SECOND
        assert await requeue(store, now, max_attempts=3) == 1
        assert await store.batches.count_states(record.seq) == {"queued": 1}
        await assert_counts(store, record)
    [last] = await claim_all(store, now=now, lease=SECOND)
    assert last.attempt == 3
    assert await requeue(store, now + 2 * SECOND, max_attempts=3) == 1
    batch = await assert_counts(store, record)
    assert (batch.status, batch.errored, batch.ended_at) == ("ended", 1, now + 2 * SECOND)
    assert await outcomes(store, record) == {"r00000": ("errored", OUT_OF_ATTEMPTS)}
    assert await store.queue.finish([done(last)], [], now + 3 * SECOND) == 0  # fenced off
    assert await requeue(store, now + HOUR, max_attempts=3) == 0


async def test_lease_is_expired_only_strictly_after_it_runs_out(store: Store) -> None:
    record = await new_batch(store, await workspace(store, "a"), 1)
    await claim_all(store, lease=5 * SECOND)
    assert await requeue(store, T0 + 5 * SECOND) == 0
    assert await requeue(store, T0 + 5 * SECOND + 1) == 1
    assert await store.batches.count_states(record.seq) == {"queued": 1}


async def test_expired_batch_settles_queued_requests_and_lets_running_ones_finish(
    store: Store,
) -> None:
    ws = await workspace(store, "a")
    record = await new_batch(store, ws, 3, expires_in=HOUR)
    fresh = await new_batch(store, ws, 1)
    [running] = await claim_all(store, limit=1)
    assert await store.queue.closing_batches(T0 + HOUR - 1) == {}
    assert await store.queue.closing_batches(T0 + HOUR) == {record.seq: "expired"}
    assert await store.sweeps.settle_closing_batches(T0 + HOUR) == 2
    batch = await assert_counts(store, record)
    assert (batch.status, batch.expired, batch.processing) == ("in_progress", 2, 1)
    assert await store.queue.finish([done(running)], [], T0 + HOUR + 1) == 1
    batch = await assert_counts(store, record)
    assert (batch.status, batch.succeeded, batch.expired) == ("ended", 1, 2)
    assert (await reload(store, fresh)).status == "in_progress"
    assert await store.sweeps.settle_closing_batches(T0 + 2 * HOUR) == 0
    assert await outcomes(store, record) == {
        "r00000": ("succeeded", outcome(running)),
        "r00001": ("expired", None),
        "r00002": ("expired", None),
    }


async def test_expired_batch_with_nothing_running_ends_at_once(store: Store) -> None:
    record = await new_batch(store, await workspace(store, "a"), 2, expires_in=HOUR)
    assert await store.sweeps.settle_closing_batches(T0 + HOUR + 5) == 2
    batch = await assert_counts(store, record)
    assert (batch.status, batch.expired, batch.ended_at) == ("ended", 2, T0 + HOUR + 5)
    assert await store.queue.closing_batches(T0 + 2 * HOUR) == {}


async def test_closing_batches_names_canceling_and_expired_open_batches(store: Store) -> None:
    ws = await workspace(store, "a")
    canceling = await new_batch(store, ws, 2, expires_in=HOUR)
    await claim_all(store, limit=1)
    await store.batches.cancel_batch(ws, canceling.id, T0)
    expiring = await new_batch(store, ws, 1, expires_in=2 * HOUR)
    await new_batch(store, ws, 1)  # open, far from expiry
    ended = await new_batch(store, ws, 1, expires_in=HOUR)
    await store.batches.cancel_batch(ws, ended.id, T0)
    assert (await reload(store, ended)).status == "ended"
    assert await store.queue.closing_batches(T0) == {canceling.seq: "canceled"}
    # Past expires_at a canceling batch's unstarted requests expire instead (closing_as).
    assert await store.queue.closing_batches(T0 + 2 * HOUR) == {
        canceling.seq: "expired",
        expiring.seq: "expired",
    }


async def test_requeued_request_of_a_canceling_batch_is_settled_by_the_sweep(
    store: Store,
) -> None:
    ws = await workspace(store, "a")
    record = await new_batch(store, ws, 2)
    [lost, kept] = await claim_all(store, lease=5 * SECOND)
    await store.queue.extend_leases([(kept.row_id, kept.attempt)], T0 + HOUR)
    await store.batches.cancel_batch(ws, record.id, T0 + 1)
    assert await requeue(store, T0 + 6 * SECOND) == 1
    assert await store.batches.count_states(record.seq) == {"queued": 1, "running": 1}
    assert await claim_all(store, now=T0 + 7 * SECOND) == []
    assert await store.sweeps.settle_closing_batches(T0 + 8 * SECOND) == 1
    batch = await assert_counts(store, record)
    assert (batch.status, batch.canceled, batch.processing) == ("canceling", 1, 1)
    assert await store.queue.finish([done(kept)], [], T0 + 9 * SECOND) == 1
    batch = await assert_counts(store, record)
    assert (batch.status, batch.ended_at) == ("ended", T0 + 9 * SECOND)
    assert await outcomes(store, record) == {
        lost.custom_id: ("canceled", None),
        kept.custom_id: ("succeeded", outcome(kept)),
    }


# ------------------------------------------------------------------------------ cancel


async def test_cancel_with_nothing_running_ends_the_batch_at_once(store: Store) -> None:
    ws = await workspace(store, "a")
    record = await new_batch(store, ws, 3)
    canceled = await store.batches.cancel_batch(ws, record.id, T0 + 5)
    assert canceled is not None
    assert (canceled.status, canceled.canceled, canceled.processing) == ("ended", 3, 0)
    assert (canceled.cancel_initiated_at, canceled.ended_at) == (T0 + 5, T0 + 5)
    await assert_counts(store, record)
    assert await claim_all(store) == []
    found = await outcomes(store, record)
    assert set(found.values()) == {("canceled", None)}


async def test_cancel_settles_queued_and_waits_for_running(store: Store) -> None:
    ws = await workspace(store, "a")
    record = await new_batch(store, ws, 4)
    a, b = await claim_all(store, limit=2)
    canceling = await store.batches.cancel_batch(ws, record.id, T0 + 1)
    assert canceling is not None
    assert (canceling.status, canceling.canceled, canceling.processing) == ("canceling", 2, 2)
    assert canceling.ended_at is None
    assert await store.queue.closing_batches(T0 + 2) == {record.seq: "canceled"}
    # A running request sent back to the queue after the cancel is settled by the sweep.
    await store.queue.finish([done(a)], [Retry(b.row_id, b.attempt, not_before=T0)], T0 + 2)
    batch = await assert_counts(store, record)
    assert (batch.status, batch.succeeded, batch.processing) == ("canceling", 1, 1)
    assert await claim_all(store, now=T0 + 3) == []
    assert await store.sweeps.settle_closing_batches(T0 + 4) == 1
    batch = await assert_counts(store, record)
    assert (batch.status, batch.canceled, batch.succeeded, batch.ended_at) == (
        "ended",
        3,
        1,
        T0 + 4,
    )
    assert batch.cancel_initiated_at == T0 + 1


async def test_cancel_past_expiry_settles_queued_as_expired(store: Store) -> None:
    ws = await workspace(store, "a")
    record = await new_batch(store, ws, 2, expires_in=HOUR)
    canceled = await store.batches.cancel_batch(ws, record.id, T0 + HOUR)
    assert canceled is not None
    assert (canceled.status, canceled.expired, canceled.canceled) == ("ended", 2, 0)
    assert (canceled.cancel_initiated_at, canceled.ended_at) == (T0 + HOUR, T0 + HOUR)
    await assert_counts(store, record)


async def test_cancel_is_idempotent(store: Store) -> None:
    ws = await workspace(store, "a")
    record = await new_batch(store, ws, 2)
    await claim_all(store, limit=1)
    first = await store.batches.cancel_batch(ws, record.id, T0 + 1)
    second = await store.batches.cancel_batch(ws, record.id, T0 + 2)
    assert first == second
    assert second is not None and second.cancel_initiated_at == T0 + 1
    ended = await new_batch(store, ws, 1)
    [claimed] = await claim_all(store)
    await store.queue.finish([done(claimed)], [], T0 + 3)
    after = await store.batches.cancel_batch(ws, ended.id, T0 + 4)
    assert after is not None
    assert (after.status, after.succeeded, after.cancel_initiated_at) == ("ended", 1, None)


# ------------------------------------------------------------------------------ delete


async def test_delete_refuses_open_batches_and_removes_ended_ones(
    store: Store, backend: Backend
) -> None:
    ws = await workspace(store, "a")
    record = await new_batch(store, ws, 2)
    refused = await store.batches.delete_batch(ws, record.id)
    assert refused is not None and refused.status == "in_progress"
    assert await reload(store, record) == refused
    await store.batches.cancel_batch(ws, record.id, T0)
    deleted = await store.batches.delete_batch(ws, record.id)
    assert deleted is not None and deleted.status == "ended"
    assert await store.batches.get_batch(ws, record.id) is None
    assert await store.batches.delete_batch(ws, record.id) is None
    assert await store.batches.count_states(record.seq) == {}
    assert await outcomes(store, record) == {}
    if backend.is_sql:
        # No orphans: only the workspace and its key are left.
        counts = await backend.row_counts()
        assert {name: n for name, n in counts.items() if n} == {"workspaces": 1, "api_keys": 1}


async def test_delete_frees_the_idempotency_key(store: Store) -> None:
    ws = await workspace(store, "a")
    items = [NewRequest("only", "sim", params_for("only"))]
    record = await store.batches.create_batch(new_batch_for(ws, idempotency_key="k"), items)
    await store.batches.cancel_batch(ws, record.id, T0)
    await store.batches.delete_batch(ws, record.id)
    assert await store.batches.find_idempotent(ws, "k") is None
    again = await store.batches.create_batch(new_batch_for(ws, idempotency_key="k"), items)
    assert await store.batches.find_idempotent(ws, "k") == (again, None)


async def test_iter_outcomes_stops_when_the_batch_is_deleted_midway(store: Store) -> None:
    ws = await workspace(store, "a")
    record = await new_batch(store, ws, 5)
    await store.batches.cancel_batch(ws, record.id, T0)
    pages = []
    async for page in store.batches.iter_outcomes(record.seq, page_size=2):
        pages.append(page)
        await store.batches.delete_batch(ws, record.id)
    assert [[o.custom_id for o in page] for page in pages] == [["r00000", "r00001"]]


# ------------------------------------------------------------------------------ retention


async def test_purge_archived_removes_requests_in_bounded_steps_but_keeps_the_batch(
    store: Store, backend: Backend
) -> None:
    ws = await workspace(store, "a")
    old = await new_batch(store, ws, 5, archives_in=HOUR)
    open_old = await new_batch(store, ws, 1, archives_in=HOUR)
    young = await new_batch(store, ws, 1, archives_in=3 * HOUR)
    claimed = [c for c in await claim_all(store) if c.batch_seq != open_old.seq]
    await store.queue.finish([done(c) for c in claimed], [], T0 + 1)
    before = await store.batches.get_batch(ws, old.id)
    assert await store.sweeps.purge_archived(T0 + HOUR - 1, limit=2) == 0
    steps = [await store.sweeps.purge_archived(T0 + HOUR, limit=2) for _ in range(5)]
    assert steps == [2, 2, 1, 1, 0]  # requests 2 at a time, then the batch is marked once
    kept = await reload(store, old)  # the counts stay; the requests they counted are gone
    assert kept == before and (kept.status, kept.succeeded) == ("ended", 5)
    assert await outcomes(store, old) == {}
    assert await store.batches.count_states(old.seq) == {}
    assert all(o is not None for _, o in (await outcomes(store, young)).values())
    assert (await reload(store, open_old)).status == "in_progress"
    if backend.is_sql:
        counts = await backend.row_counts()
        assert (counts["outcomes"], counts["requests"]) == (1, 2)  # young's, open_old's


# ------------------------------------------------------------------------------ outcomes


async def test_iter_outcomes_pages_every_request_once_in_custom_id_order(store: Store) -> None:
    ws = await workspace(store, "a")
    custom_ids = ["b", "a", "c-1", "C", "_z", "a0"]
    record = await new_batch(store, ws, custom_ids=custom_ids)
    await new_batch(store, ws, custom_ids=custom_ids)  # same ids in another batch
    claimed = [c for c in await claim_all(store) if c.batch_seq == record.seq]
    await store.queue.finish([done(c) for c in claimed[:3]], [], T0)
    await store.batches.cancel_batch(ws, record.id, T0)
    seen: list[str] = []
    async for page in store.batches.iter_outcomes(record.seq, page_size=4):
        assert 0 < len(page) <= 4
        seen.extend(r.custom_id for r in page)
    assert seen == sorted(custom_ids)


@pytest.mark.parametrize(("n", "page_size", "sizes"), [(7, 3, [3, 3, 1]), (6, 3, [3, 3])])
async def test_iter_outcomes_pages_across_page_boundaries_with_exact_bytes(
    store: Store, n: int, page_size: int, sizes: list[int]
) -> None:
    record = await new_batch(store, await workspace(store, "a"), n)
    claimed = await claim_all(store)
    # Arbitrary bytes, not only JSON: every byte value, and an empty outcome.
    stored = {
        c.row_id: bytes(range(256)) + c.custom_id.encode() if i else b""
        for i, c in enumerate(claimed)
    }
    finished = [
        Finished(row_id=c.row_id, attempt=c.attempt, state="succeeded", outcome=stored[c.row_id])
        for c in claimed
    ]
    assert await store.queue.finish(finished, [], T0 + 1) == n
    pages = [page async for page in store.batches.iter_outcomes(record.seq, page_size=page_size)]
    assert [len(page) for page in pages] == sizes
    by_custom_id = {c.custom_id: stored[c.row_id] for c in claimed}
    flat = [o for page in pages for o in page]
    assert [o.custom_id for o in flat] == sorted(by_custom_id)
    for o in flat:
        assert (o.state, o.outcome) == ("succeeded", by_custom_id[o.custom_id])
        assert o.outcome is None or type(o.outcome) is bytes


async def test_iter_outcomes_shows_unfinished_requests_without_outcome(store: Store) -> None:
    record = await new_batch(store, await workspace(store, "a"), 3)
    await claim_all(store, limit=1)
    assert await outcomes(store, record) == {
        "r00000": ("running", None),
        "r00001": ("queued", None),
        "r00002": ("queued", None),
    }
    assert await store.batches.count_states(record.seq) == {"running": 1, "queued": 2}


# ------------------------------------------------------------------------------ list


async def test_list_batches_pages_newest_first_in_both_directions(store: Store) -> None:
    ws = await workspace(store, "a")
    made = [await new_batch(store, ws, 1, created_at=T0 + i) for i in range(5)]
    newest_first = [b.id for b in reversed(made)]

    async def page(
        limit: int, after: str | None = None, before: str | None = None
    ) -> tuple[list[str], bool]:
        result = await store.batches.list_batches(ws, limit=limit, after_id=after, before_id=before)
        assert result is not None
        return [b.id for b in result.batches], result.has_more

    assert await page(10) == (newest_first, False)
    assert await page(5) == (newest_first, False)
    assert await page(2) == (newest_first[:2], True)
    assert await page(2, after=newest_first[1]) == (newest_first[2:4], True)
    assert await page(2, after=newest_first[3]) == (newest_first[4:], False)
    assert await page(2, after=newest_first[4]) == ([], False)
    # Walking back: the items nearest the cursor, still shown newest first.
    assert await page(2, before=newest_first[4]) == (newest_first[2:4], True)
    assert await page(2, before=newest_first[2]) == (newest_first[:2], False)
    assert await page(10, before=newest_first[3]) == (newest_first[:3], False)
    assert await page(2, before=newest_first[0]) == ([], False)
    assert await page(1, after=newest_first[0]) == (newest_first[1:2], True)


async def test_list_batches_unknown_cursor_is_none(store: Store) -> None:
    ws = await workspace(store, "a")
    await new_batch(store, ws, 1)
    missing = ids.batch_id()
    assert await store.batches.list_batches(ws, limit=5, after_id=missing, before_id=None) is None
    assert await store.batches.list_batches(ws, limit=5, after_id=None, before_id=missing) is None
    empty = await store.batches.list_batches(
        await workspace(store, "b"), limit=5, after_id=None, before_id=None
    )
    assert empty is not None and (empty.batches, empty.has_more) == ([], False)


# ------------------------------------------------------------------------------ workspaces


async def test_every_lookup_is_scoped_to_its_workspace(store: Store) -> None:
    mine, theirs = await workspace(store, "mine"), await workspace(store, "theirs")
    assert mine != theirs
    record = await new_batch(store, mine, 2)
    other = await new_batch(store, theirs, 1)
    assert await store.batches.get_batch(theirs, record.id) is None
    listed = await store.batches.list_batches(theirs, limit=10, after_id=None, before_id=None)
    assert listed is not None and [b.id for b in listed.batches] == [other.id]
    assert (
        await store.batches.list_batches(theirs, limit=10, after_id=record.id, before_id=None)
        is None
    )
    assert (
        await store.batches.list_batches(theirs, limit=10, after_id=None, before_id=record.id)
        is None
    )
    assert await store.batches.cancel_batch(theirs, record.id, T0) is None
    assert (await reload(store, record)).status == "in_progress"
    await store.batches.cancel_batch(mine, record.id, T0)
    assert await store.batches.delete_batch(theirs, record.id) is None
    assert await store.batches.get_batch(mine, record.id) is not None
    assert await store.keys.workspace_for_key(ids.hash_api_key("no such key")) is None


async def test_keys_of_one_workspace_share_it(store: Store) -> None:
    first = await workspace(store, "team")
    await store.keys.create_api_key("team", ids.hash_api_key("second key"), "sk-by-2", T0)
    assert await store.keys.workspace_for_key(ids.hash_api_key("second key")) == first


# ------------------------------------------------------------------------------ webhooks


async def test_webhooks_are_listed_per_workspace(store: Store) -> None:
    first = await store.outbox.add_webhook("a", "https://a.example/1", "whsec_1", T0)
    second = await store.outbox.add_webhook("a", "https://a.example/2", "whsec_2", T0 + 1)
    theirs = await store.outbox.add_webhook("b", "https://b.example/", "whsec_3", T0 + 2)
    assert len({first, second, theirs}) == 3
    hooks = await store.outbox.list_webhooks("a")
    assert [(h.id, h.url, h.created_at) for h in hooks] == [
        (first, "https://a.example/1", T0),
        (second, "https://a.example/2", T0 + 1),
    ]
    assert await store.outbox.list_webhooks("nobody") == []
    assert await store.outbox.remove_webhook("a", theirs) is False
    assert await store.outbox.remove_webhook("nobody", theirs) is False
    assert [h.id for h in await store.outbox.list_webhooks("b")] == [theirs]
    assert await store.outbox.remove_webhook("a", first) is True
    assert await store.outbox.remove_webhook("a", first) is False
    assert [h.id for h in await store.outbox.list_webhooks("a")] == [second]


async def claim_deliveries(
    store: Store, now: int, *, lease: int = 30 * SECOND, max_attempts: int = 5
) -> list[Any]:
    return await store.outbox.claim_deliveries(
        limit=100, now=now, lease_until=now + lease, max_attempts=max_attempts
    )


async def test_ending_a_batch_queues_one_event_per_webhook_exactly_once(store: Store) -> None:
    ws = await workspace(store, "a")
    await store.outbox.add_webhook("a", "https://a.example/1", "whsec_1", T0)
    await store.outbox.add_webhook("a", "https://a.example/2", "whsec_2", T0)
    await store.outbox.add_webhook("b", "https://b.example/", "whsec_3", T0)
    record = await new_batch(store, ws, 2)
    a, b = await claim_all(store)
    await store.queue.finish([done(a)], [], T0 + 1)
    assert await claim_deliveries(store, T0 + 1) == []  # not ended yet
    await store.queue.finish([done(b)], [], T0 + 2)
    # Nothing that touches the batch afterwards queues it again.
    await store.queue.finish([done(a), done(b)], [], T0 + 3)
    await store.batches.cancel_batch(ws, record.id, T0 + 3)
    await store.sweeps.settle_closing_batches(T0 + 3)
    due = await claim_deliveries(store, T0 + 3)
    assert sorted((d.url, d.secret) for d in due) == [
        ("https://a.example/1", "whsec_1"),
        ("https://a.example/2", "whsec_2"),
    ]
    for delivery in due:
        assert (delivery.workspace_id, delivery.batch_id) == (ws, record.id)
        assert (delivery.event, delivery.attempts, delivery.created_at) == (
            "message_batch.ended",
            1,
            T0 + 2,
        )
    assert len({d.id for d in due}) == 2


async def test_every_way_of_ending_queues_the_event(store: Store) -> None:
    ws = await workspace(store, "a")
    await store.outbox.add_webhook("a", "https://a.example/", "whsec_1", T0)
    canceled = await new_batch(store, ws, 1)
    await store.batches.cancel_batch(ws, canceled.id, T0)
    exhausted = await new_batch(store, ws, 1)
    [lost] = await claim_all(store, lease=SECOND)
    assert lost.batch_seq == exhausted.seq
    expired = await new_batch(store, ws, 1, expires_in=HOUR)
    assert await requeue(store, T0 + 2 * SECOND, max_attempts=1) == 1
    assert await store.sweeps.settle_closing_batches(T0 + HOUR) == 1
    for record in (canceled, expired, exhausted):
        assert (await reload(store, record)).status == "ended"
    due = await claim_deliveries(store, T0 + HOUR)
    assert sorted(d.batch_id for d in due) == sorted(r.id for r in (canceled, expired, exhausted))


async def test_delivery_lease_fencing_and_max_attempts(store: Store) -> None:
    ws = await workspace(store, "a")
    await store.outbox.add_webhook("a", "https://a.example/", "whsec_1", T0)
    record = await new_batch(store, ws, 1)
    await store.batches.cancel_batch(ws, record.id, T0)

    [first] = await claim_deliveries(store, T0, lease=10 * SECOND)
    assert first.attempts == 1
    assert await claim_deliveries(store, T0 + 10 * SECOND) == []  # leased until then
    # The first attempt's process vanished: its lease runs out and the event is claimed again.
    [second] = await claim_deliveries(store, T0 + 10 * SECOND + 1, lease=10 * SECOND)
    assert (second.id, second.attempts) == (first.id, 2)
    # The stale first attempt cannot write: its "delivered" is ignored.
    await store.outbox.record_delivery(
        first.id, attempt=1, now=T0 + 12 * SECOND, delivered=True, next_attempt_at=None, error=None
    )
    # The second attempt fails and asks for a retry later.
    await store.outbox.record_delivery(
        second.id,
        attempt=2,
        now=T0 + 13 * SECOND,
        delivered=False,
        next_attempt_at=T0 + 60 * SECOND,
        error="HTTP 503 " + "x" * 1000,
    )
    assert await claim_deliveries(store, T0 + 59 * SECOND) == []
    [third] = await claim_deliveries(store, T0 + 60 * SECOND, max_attempts=3)
    assert third.attempts == 3
    # Out of attempts: a lease that runs out does not bring the event back.
    assert await claim_deliveries(store, T0 + HOUR, max_attempts=3) == []
    [fourth] = await claim_deliveries(store, T0 + HOUR, max_attempts=5)
    await store.outbox.record_delivery(
        fourth.id, attempt=4, now=T0 + HOUR, delivered=True, next_attempt_at=None, error=None
    )
    # Delivered stays delivered: neither a late attempt nor time brings it back.
    await store.outbox.record_delivery(
        fourth.id,
        attempt=4,
        now=T0 + HOUR + 1,
        delivered=False,
        next_attempt_at=T0 + HOUR + 2,
        error="late",
    )
    assert await claim_deliveries(store, T0 + 2 * HOUR, max_attempts=100) == []


async def test_a_delivery_given_up_is_not_claimed_again(store: Store) -> None:
    ws = await workspace(store, "a")
    await store.outbox.add_webhook("a", "https://a.example/", "whsec_1", T0)
    record = await new_batch(store, ws, 1)
    await store.batches.cancel_batch(ws, record.id, T0)
    [delivery] = await claim_deliveries(store, T0)
    await store.outbox.record_delivery(
        delivery.id, attempt=1, now=T0 + 1, delivered=False, next_attempt_at=None, error="410"
    )
    assert await claim_deliveries(store, T0 + HOUR, max_attempts=100) == []


async def test_remove_webhook_drops_its_pending_deliveries(store: Store) -> None:
    ws = await workspace(store, "a")
    gone = await store.outbox.add_webhook("a", "https://a.example/gone", "whsec_1", T0)
    await store.outbox.add_webhook("a", "https://a.example/kept", "whsec_2", T0)
    record = await new_batch(store, ws, 1)
    await store.batches.cancel_batch(ws, record.id, T0)
    assert await store.outbox.remove_webhook("a", gone) is True
    [due] = await claim_deliveries(store, T0)
    assert due.url == "https://a.example/kept"
    await store.outbox.record_delivery(
        due.id, attempt=1, now=T0, delivered=True, next_attempt_at=None, error=None
    )
    # A webhook added after the batch ended gets none of its events.
    await store.outbox.add_webhook("a", "https://a.example/late", "whsec_3", T0 + 1)
    assert await claim_deliveries(store, T0 + HOUR) == []


async def test_a_batch_event_outlives_the_deleted_batch(store: Store) -> None:
    ws = await workspace(store, "a")
    await store.outbox.add_webhook("a", "https://a.example/", "whsec_1", T0)
    record = await new_batch(store, ws, 1)
    await store.batches.cancel_batch(ws, record.id, T0)
    await store.batches.delete_batch(ws, record.id)
    [due] = await claim_deliveries(store, T0 + 1)
    assert (due.batch_id, due.workspace_id) == (record.id, ws)
