"""Behaviour of :class:`batchyard.store.sql.SqlStore` on a real database.

The invariants from the store's docstring are checked directly: acknowledged batches are
atomic, a request is never claimed twice, a stale completion is fenced off and a result is
written exactly once, counts always add up, a batch ends exactly once, and every lookup is
scoped to its workspace.

Each test runs one ``async`` scenario inside ``asyncio.run`` (no async test plugin), so a
store and its connection pools never outlive the event loop that made them. ``DATABASES`` is
the list of backends the whole suite runs on; add a PostgreSQL URL to it to run the same
behaviour there (each test then starts from dropped and recreated tables).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from batchyard import ids
from batchyard.store.connect import create_engines
from batchyard.store.records import BatchRecord, ClaimedRequest, Completion, NewBatch, Retry
from batchyard.store.sql import SqlStore
from batchyard.store.tables import batches, metadata, requests, results

T = TypeVar("T")

SECOND = 1_000_000
HOUR = 3600 * SECOND
#: A fixed "now" far from the real clock: every time the store sees comes from the test.
T0 = 1_800_000_000 * SECOND

#: Backends the suite runs on: ``"sqlite"`` (a fresh file per test) or a database URL.
POSTGRES_URL = os.environ.get(
    "BATCHYARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
DATABASES = [pytest.param("sqlite", id="sqlite"), pytest.param(POSTGRES_URL, id="postgresql")]


class StoreRunner:
    """Runs ``scenario(store)`` on a freshly opened :class:`SqlStore` in its own event loop."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self, scenario: Callable[[SqlStore], Awaitable[T]]) -> T:
        return asyncio.run(self._run(scenario))

    async def _run(self, scenario: Callable[[SqlStore], Awaitable[T]]) -> T:
        store = await SqlStore.open(self.url)
        try:
            return await scenario(store)
        finally:
            await store.close()

    async def reset(self) -> None:
        engines = create_engines(self.url)
        try:
            async with engines.writer.begin() as conn:
                await conn.run_sync(metadata.drop_all)
        finally:
            await engines.dispose()

    async def row_count(self, table: Any) -> int:
        """Rows in ``table``, read past the store (to see orphans it would never return)."""
        engines = create_engines(self.url)
        try:
            async with engines.reader.connect() as conn:
                count: int = await conn.scalar(select(func.count()).select_from(table))
                return count
        finally:
            await engines.dispose()


@pytest.fixture(params=DATABASES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreRunner]:
    if request.param == "sqlite":
        runner = StoreRunner(f"sqlite:///{tmp_path / 'store.db'}")
    else:
        runner = StoreRunner(request.param)
        asyncio.run(runner.reset())
    yield runner


# ------------------------------------------------------------------------------ helpers


async def workspace(store: SqlStore, name: str) -> int:
    key_hash = ids.hash_api_key(f"key-{name}")
    await store.create_api_key(name, key_hash, "sk-by-test", T0)
    workspace_id = await store.workspace_for_key(key_hash)
    assert workspace_id is not None
    return workspace_id


def params_for(custom_id: str) -> bytes:
    return json.dumps(
        {"model": "sim", "max_tokens": 4, "messages": [{"role": "user", "content": custom_id}]}
    ).encode()


async def new_batch(
    store: SqlStore,
    workspace_id: int,
    n: int = 3,
    *,
    created_at: int = T0,
    expires_in: int = 24 * HOUR,
    archives_in: int = 29 * 24 * HOUR,
    custom_ids: Sequence[str] | None = None,
) -> BatchRecord:
    custom_ids = list(custom_ids) if custom_ids is not None else [f"r{i:05d}" for i in range(n)]
    record = await store.create_batch(
        NewBatch(
            id=ids.batch_id(),
            workspace_id=workspace_id,
            created_at=created_at,
            expires_at=created_at + expires_in,
            archives_at=created_at + archives_in,
        ),
        [(cid, "sim", params_for(cid)) for cid in custom_ids],
    )
    await assert_counts(store, record)
    return record


async def reload(store: SqlStore, record: BatchRecord) -> BatchRecord:
    fresh = await store.get_batch(record.workspace_id, record.id)
    assert fresh is not None
    return fresh


async def assert_counts(store: SqlStore, record: BatchRecord) -> BatchRecord:
    """Counters equal a recount of request states and sum to ``total``; returns the batch."""
    batch = await reload(store, record)
    states = await store.count_requests_by_state(batch.seq)
    assert (
        batch.processing + batch.succeeded + batch.errored + batch.canceled + batch.expired
        == batch.total
    )
    assert sum(states.values()) == batch.total
    assert batch.processing == states.get("queued", 0) + states.get("running", 0)
    for name in ("succeeded", "errored", "canceled", "expired"):
        assert getattr(batch, name) == states.get(name, 0), (name, batch, states)
    assert (batch.status == "ended") == (batch.processing == 0)
    assert (batch.ended_at is not None) == (batch.status == "ended")
    return batch


def line(request: ClaimedRequest, state: str = "succeeded") -> bytes:
    return json.dumps(
        {"custom_id": request.custom_id, "result": {"type": state}, "attempt": request.attempt}
    ).encode()


def done(request: ClaimedRequest, state: Any = "succeeded") -> Completion:
    return Completion(
        request_id=request.id, attempt=request.attempt, state=state, line=line(request, state)
    )


async def claim_all(
    store: SqlStore, *, now: int = T0, lease: int = 60 * SECOND, limit: int = 1000
) -> list[ClaimedRequest]:
    return await store.claim(limit=limit, now=now, lease_until=now + lease)


async def result_lines(store: SqlStore, record: BatchRecord) -> dict[str, tuple[str, Any]]:
    found: dict[str, tuple[str, Any]] = {}
    async for page in store.iter_results(record.seq, page_size=2):
        for stored in page:
            assert stored.custom_id not in found
            found[stored.custom_id] = (stored.state, stored.line and json.loads(stored.line))
    return found


def out_of_attempts(custom_id: str) -> bytes:
    return json.dumps({"custom_id": custom_id, "result": {"type": "errored"}}).encode()


# ------------------------------------------------------------------------------ create


def test_create_batch_returns_in_progress_record_with_all_requests_queued(
    store: StoreRunner,
) -> None:
    async def scenario(s: SqlStore) -> None:
        ws = await workspace(s, "a")
        record = await new_batch(s, ws, 4)
        assert (record.status, record.total, record.processing) == ("in_progress", 4, 4)
        assert (record.succeeded, record.errored, record.canceled, record.expired) == (0,) * 4
        assert record.ended_at is None and record.cancel_initiated_at is None
        assert await s.count_requests_by_state(record.seq) == {"queued": 4}
        assert await reload(s, record) == record

    store(scenario)


def test_create_batch_stores_params_verbatim(store: StoreRunner) -> None:
    async def scenario(s: SqlStore) -> None:
        record = await new_batch(s, await workspace(s, "a"), custom_ids=["x", "y"])
        claimed = await claim_all(s)
        assert {(c.custom_id, c.params, c.batch_seq) for c in claimed} == {
            ("x", params_for("x"), record.seq),
            ("y", params_for("y"), record.seq),
        }

    store(scenario)


def test_create_batch_failure_leaves_nothing_behind(store: StoreRunner) -> None:
    """A UNIQUE violation in the last insert chunk rolls back the batch row and every
    request row inserted before it (the first 10 000 go in an earlier statement)."""
    custom_ids = [f"r{i:05d}" for i in range(10_050)] + ["r00007"]
    batch_id = ids.batch_id()

    async def scenario(s: SqlStore) -> int:
        ws = await workspace(s, "a")
        kept = await new_batch(s, ws, 2)
        with pytest.raises(IntegrityError):
            await s.create_batch(
                NewBatch(
                    id=batch_id,
                    workspace_id=ws,
                    created_at=T0 + 1,
                    expires_at=T0 + HOUR,
                    archives_at=T0 + 2 * HOUR,
                ),
                [(cid, "sim", b"{}") for cid in custom_ids],
            )
        assert await s.get_batch(ws, batch_id) is None
        page = await s.list_batches(ws, limit=100, after_id=None, before_id=None)
        assert page is not None and [b.id for b in page.batches] == [kept.id]
        await assert_counts(s, kept)
        # The store still works after the failed transaction.
        later = await new_batch(s, ws, 1)
        assert later.seq != kept.seq
        return ws

    store(scenario)
    assert asyncio.run(store.row_count(batches)) == 2
    assert asyncio.run(store.row_count(requests)) == 3


def test_same_custom_ids_in_different_batches_are_fine(store: StoreRunner) -> None:
    async def scenario(s: SqlStore) -> None:
        ws = await workspace(s, "a")
        first = await new_batch(s, ws, custom_ids=["same"])
        second = await new_batch(s, ws, custom_ids=["same"])
        assert first.id != second.id
        assert len(await claim_all(s)) == 2

    store(scenario)


# ------------------------------------------------------------------------------ claim


def test_claim_leases_oldest_first_and_bumps_attempt(store: StoreRunner) -> None:
    async def scenario(s: SqlStore) -> None:
        ws = await workspace(s, "a")
        first = await new_batch(s, ws, 3)
        await new_batch(s, ws, 3)
        claimed = await claim_all(s, limit=4)
        assert [c.id for c in claimed] == sorted(c.id for c in claimed)
        assert [c.batch_seq for c in claimed] == [first.seq] * 3 + [first.seq + 1]
        assert {c.attempt for c in claimed} == {1}
        assert await s.count_requests_by_state(first.seq) == {"running": 3}
        batch = await assert_counts(s, first)
        assert batch.processing == 3  # running still counts as processing

    store(scenario)


def test_claim_respects_not_before(store: StoreRunner) -> None:
    async def scenario(s: SqlStore) -> None:
        await new_batch(s, await workspace(s, "a"), 1)
        [claimed] = await claim_all(s)
        await s.finish([], [Retry(claimed.id, claimed.attempt, not_before=T0 + 10 * SECOND)], T0)
        assert await claim_all(s, now=T0 + 9 * SECOND) == []
        [again] = await claim_all(s, now=T0 + 10 * SECOND)
        assert (again.id, again.attempt) == (claimed.id, 2)

    store(scenario)


def test_claim_takes_only_in_progress_unexpired_batches(store: StoreRunner) -> None:
    async def scenario(s: SqlStore) -> None:
        ws = await workspace(s, "a")
        canceling = await new_batch(s, ws, 2)
        [running] = await claim_all(s, limit=1)
        assert running.batch_seq == canceling.seq
        await s.cancel_batch(ws, canceling.id, T0)
        assert (await reload(s, canceling)).status == "canceling"
        ended = await new_batch(s, ws, 2)
        await s.cancel_batch(ws, ended.id, T0)
        assert (await reload(s, ended)).status == "ended"
        expiring = await new_batch(s, ws, 2, expires_in=HOUR)
        open_batch = await new_batch(s, ws, 2)
        claimed = await claim_all(s, now=T0 + HOUR)
        assert {c.batch_seq for c in claimed} == {open_batch.seq}
        assert len(claimed) == 2
        assert await s.count_requests_by_state(expiring.seq) == {"queued": 2}

    store(scenario)


def _assert_disjoint_and_complete(rounds: list[list[ClaimedRequest]], expected: int) -> None:
    claimed_ids = [c.id for batch in rounds for c in batch]
    duplicates = [i for i, n in Counter(claimed_ids).items() if n > 1]
    assert duplicates == []
    assert len(claimed_ids) == expected


def test_concurrent_claims_on_one_store_never_overlap(store: StoreRunner) -> None:
    async def scenario(s: SqlStore) -> None:
        ws = await workspace(s, "a")
        for _ in range(3):
            await new_batch(s, ws, 100)
        rounds: list[list[ClaimedRequest]] = []
        while True:
            got = await asyncio.gather(*(claim_all(s, limit=13) for _ in range(8)))
            rounds.extend(got)
            if not any(got):
                break
        _assert_disjoint_and_complete(rounds, 300)

    store(scenario)


def test_concurrent_claims_from_two_stores_on_one_database_never_overlap(
    store: StoreRunner,
) -> None:
    """Two processes' worth of pools: two :class:`SqlStore` instances on the same database."""

    async def scenario(s: SqlStore) -> None:
        ws = await workspace(s, "a")
        for _ in range(3):
            await new_batch(s, ws, 100)
        other = await SqlStore.open(store.url)
        try:
            rounds: list[list[ClaimedRequest]] = []
            while True:
                got = await asyncio.gather(
                    *(claim_all(owner, limit=11) for owner in [s, other] * 4)
                )
                rounds.extend(got)
                if not any(got):
                    break
        finally:
            await other.close()
        _assert_disjoint_and_complete(rounds, 300)

    store(scenario)


# ------------------------------------------------------------------------------ finish


def test_finish_writes_results_and_ends_the_batch_exactly_once(store: StoreRunner) -> None:
    async def scenario(s: SqlStore) -> None:
        record = await new_batch(s, await workspace(s, "a"), 3)
        a, b, c = await claim_all(s)
        assert await s.finish([done(a), done(b, "errored")], [], T0 + 1) == 2
        batch = await assert_counts(s, record)
        assert (batch.status, batch.succeeded, batch.errored, batch.processing) == (
            "in_progress",
            1,
            1,
            1,
        )
        assert await s.finish([done(c)], [], T0 + 2) == 1
        batch = await assert_counts(s, record)
        assert (batch.status, batch.ended_at, batch.succeeded) == ("ended", T0 + 2, 2)
        # Replaying the same completions changes nothing, and ended_at stays put.
        assert await s.finish([done(a), done(c)], [], T0 + 3) == 0
        assert await assert_counts(s, record) == batch
        lines = await result_lines(s, record)
        assert {cid: state for cid, (state, _) in lines.items()} == {
            "r00000": "succeeded",
            "r00001": "errored",
            "r00002": "succeeded",
        }

    store(scenario)


def test_retry_requeues_with_the_same_fence(store: StoreRunner) -> None:
    async def scenario(s: SqlStore) -> None:
        record = await new_batch(s, await workspace(s, "a"), 1)
        [first] = await claim_all(s)
        stale = Retry(first.id, first.attempt + 1, not_before=T0)
        await s.finish([], [stale], T0)
        assert await s.count_requests_by_state(record.seq) == {"running": 1}
        await s.finish([], [Retry(first.id, first.attempt, not_before=T0)], T0)
        assert await s.count_requests_by_state(record.seq) == {"queued": 1}
        await assert_counts(s, record)

    store(scenario)


def test_stale_completion_after_requeue_and_reclaim_is_discarded(store: StoreRunner) -> None:
    """Fencing: worker 1's lease runs out, the request is re-queued and re-claimed by worker
    2; worker 1's late completion (old attempt) is dropped whether it arrives while the
    request is queued, running again, or already finished, and one result line is written."""

    async def scenario(s: SqlStore) -> None:
        record = await new_batch(s, await workspace(s, "a"), 2)
        first, other = await claim_all(s, lease=5 * SECOND)
        await s.extend_leases([(other.id, other.attempt)], T0 + HOUR)
        assert (
            await s.requeue_expired_leases(
                T0 + 6 * SECOND, max_attempts=5, error_line=out_of_attempts
            )
            == 1
        )
        assert await s.finish([done(first)], [], T0 + 7 * SECOND) == 0  # while queued
        await assert_counts(s, record)
        [second] = await claim_all(s, now=T0 + 8 * SECOND)
        assert (second.id, second.attempt) == (first.id, first.attempt + 1)
        assert await s.finish([done(first)], [], T0 + 9 * SECOND) == 0  # while re-claimed
        assert await s.count_requests_by_state(record.seq) == {"running": 2}
        assert await s.finish([done(second, "errored")], [], T0 + 10 * SECOND) == 1
        assert await s.finish([done(first), done(second)], [], T0 + 11 * SECOND) == 0
        batch = await assert_counts(s, record)
        assert (batch.errored, batch.succeeded, batch.processing) == (1, 0, 1)
        lines = await result_lines(s, record)
        assert lines[first.custom_id] == ("errored", json.loads(line(second, "errored")))
        assert lines[other.custom_id] == ("running", None)

    store(scenario)


def test_extend_leases_keeps_a_live_request_from_being_requeued(store: StoreRunner) -> None:
    async def scenario(s: SqlStore) -> None:
        record = await new_batch(s, await workspace(s, "a"), 1)
        [claimed] = await claim_all(s, lease=5 * SECOND)
        await s.extend_leases([(claimed.id, claimed.attempt + 1)], T0 + HOUR)  # wrong fence
        await s.extend_leases([(claimed.id, claimed.attempt)], T0 + 20 * SECOND)
        assert (
            await s.requeue_expired_leases(
                T0 + 10 * SECOND, max_attempts=5, error_line=out_of_attempts
            )
            == 0
        )
        assert (
            await s.requeue_expired_leases(
                T0 + 21 * SECOND, max_attempts=5, error_line=out_of_attempts
            )
            == 1
        )
        assert await s.count_requests_by_state(record.seq) == {"queued": 1}

    store(scenario)


# ------------------------------------------------------------------------------ sweeps


def test_requeue_expired_leases_retries_then_errors_out_of_attempts(store: StoreRunner) -> None:
    async def scenario(s: SqlStore) -> None:
        record = await new_batch(s, await workspace(s, "a"), 1)
        now = T0
        for attempt in (1, 2):
            [claimed] = await claim_all(s, now=now, lease=SECOND)
            assert claimed.attempt == attempt
            now += 2 * SECOND
            assert (
                await s.requeue_expired_leases(now, max_attempts=3, error_line=out_of_attempts) == 1
            )
            assert await s.count_requests_by_state(record.seq) == {"queued": 1}
            await assert_counts(s, record)
        [last] = await claim_all(s, now=now, lease=SECOND)
        assert last.attempt == 3
        assert (
            await s.requeue_expired_leases(
                now + 2 * SECOND, max_attempts=3, error_line=out_of_attempts
            )
            == 1
        )
        batch = await assert_counts(s, record)
        assert (batch.status, batch.errored, batch.ended_at) == ("ended", 1, now + 2 * SECOND)
        assert await result_lines(s, record) == {
            "r00000": ("errored", json.loads(out_of_attempts("r00000")))
        }
        assert await s.finish([done(last)], [], now + 3 * SECOND) == 0  # fenced off
        assert (
            await s.requeue_expired_leases(now + HOUR, max_attempts=3, error_line=out_of_attempts)
            == 0
        )

    store(scenario)


def test_expired_batch_settles_queued_requests_and_lets_running_ones_finish(
    store: StoreRunner,
) -> None:
    async def scenario(s: SqlStore) -> None:
        ws = await workspace(s, "a")
        record = await new_batch(s, ws, 3, expires_in=HOUR)
        fresh = await new_batch(s, ws, 1)
        [running] = await claim_all(s, limit=1)
        assert await s.closing_batches(T0 + HOUR - 1) == {}
        assert await s.closing_batches(T0 + HOUR) == {record.seq: "expired"}
        assert await s.expire_and_cancel_open_batches(T0 + HOUR) == 2
        batch = await assert_counts(s, record)
        assert (batch.status, batch.expired, batch.processing) == ("in_progress", 2, 1)
        assert await s.finish([done(running)], [], T0 + HOUR + 1) == 1
        batch = await assert_counts(s, record)
        assert (batch.status, batch.succeeded, batch.expired) == ("ended", 1, 2)
        assert (await reload(s, fresh)).status == "in_progress"
        assert await s.expire_and_cancel_open_batches(T0 + 2 * HOUR) == 0
        states = {cid: state for cid, (state, _) in (await result_lines(s, record)).items()}
        assert states == {"r00000": "succeeded", "r00001": "expired", "r00002": "expired"}

    store(scenario)


def test_expired_batch_with_nothing_running_ends_at_once(store: StoreRunner) -> None:
    async def scenario(s: SqlStore) -> None:
        record = await new_batch(s, await workspace(s, "a"), 2, expires_in=HOUR)
        assert await s.expire_and_cancel_open_batches(T0 + HOUR + 5) == 2
        batch = await assert_counts(s, record)
        assert (batch.status, batch.expired, batch.ended_at) == ("ended", 2, T0 + HOUR + 5)
        assert await s.closing_batches(T0 + 2 * HOUR) == {}

    store(scenario)


# ------------------------------------------------------------------------------ cancel


def test_cancel_with_nothing_running_ends_the_batch_at_once(store: StoreRunner) -> None:
    async def scenario(s: SqlStore) -> None:
        ws = await workspace(s, "a")
        record = await new_batch(s, ws, 3)
        canceled = await s.cancel_batch(ws, record.id, T0 + 5)
        assert canceled is not None
        assert (canceled.status, canceled.canceled, canceled.processing) == ("ended", 3, 0)
        assert (canceled.cancel_initiated_at, canceled.ended_at) == (T0 + 5, T0 + 5)
        await assert_counts(s, record)
        assert await claim_all(s) == []
        lines = await result_lines(s, record)
        assert set(lines.values()) == {("canceled", None)}

    store(scenario)


def test_cancel_settles_queued_and_waits_for_running(store: StoreRunner) -> None:
    async def scenario(s: SqlStore) -> None:
        ws = await workspace(s, "a")
        record = await new_batch(s, ws, 4)
        a, b = await claim_all(s, limit=2)
        canceling = await s.cancel_batch(ws, record.id, T0 + 1)
        assert canceling is not None
        assert (canceling.status, canceling.canceled, canceling.processing) == ("canceling", 2, 2)
        assert canceling.ended_at is None
        assert await s.closing_batches(T0 + 2) == {record.seq: "canceled"}
        # A running request sent back to the queue after the cancel is settled by the sweep.
        await s.finish([done(a)], [Retry(b.id, b.attempt, not_before=T0)], T0 + 2)
        batch = await assert_counts(s, record)
        assert (batch.status, batch.succeeded, batch.processing) == ("canceling", 1, 1)
        assert await claim_all(s, now=T0 + 3) == []
        assert await s.expire_and_cancel_open_batches(T0 + 4) == 1
        batch = await assert_counts(s, record)
        assert (batch.status, batch.canceled, batch.succeeded, batch.ended_at) == (
            "ended",
            3,
            1,
            T0 + 4,
        )
        assert batch.cancel_initiated_at == T0 + 1

    store(scenario)


def test_cancel_is_idempotent(store: StoreRunner) -> None:
    async def scenario(s: SqlStore) -> None:
        ws = await workspace(s, "a")
        record = await new_batch(s, ws, 2)
        await claim_all(s, limit=1)
        first = await s.cancel_batch(ws, record.id, T0 + 1)
        second = await s.cancel_batch(ws, record.id, T0 + 2)
        assert first == second
        assert second is not None and second.cancel_initiated_at == T0 + 1
        ended = await new_batch(s, ws, 1)
        [claimed] = await claim_all(s)
        await s.finish([done(claimed)], [], T0 + 3)
        after = await s.cancel_batch(ws, ended.id, T0 + 4)
        assert after is not None
        assert (after.status, after.succeeded, after.cancel_initiated_at) == ("ended", 1, None)

    store(scenario)


# ------------------------------------------------------------------------------ delete


def test_delete_refuses_open_batches_and_removes_ended_ones(store: StoreRunner) -> None:
    async def scenario(s: SqlStore) -> None:
        ws = await workspace(s, "a")
        record = await new_batch(s, ws, 2)
        refused = await s.delete_batch(ws, record.id)
        assert refused is not None and refused.status == "in_progress"
        assert await reload(s, record) == refused
        await s.cancel_batch(ws, record.id, T0)
        deleted = await s.delete_batch(ws, record.id)
        assert deleted is not None and deleted.status == "ended"
        assert await s.get_batch(ws, record.id) is None
        assert await s.delete_batch(ws, record.id) is None
        assert await s.count_requests_by_state(record.seq) == {}

    store(scenario)
    assert asyncio.run(store.row_count(requests)) == 0
    assert asyncio.run(store.row_count(results)) == 0


# ------------------------------------------------------------------------------ retention


def test_purge_archived_drops_results_and_params_but_keeps_the_batch(store: StoreRunner) -> None:
    async def scenario(s: SqlStore) -> None:
        ws = await workspace(s, "a")
        old = await new_batch(s, ws, 2, archives_in=HOUR)
        open_old = await new_batch(s, ws, 1, archives_in=HOUR)
        young = await new_batch(s, ws, 1, archives_in=3 * HOUR)
        claimed = [c for c in await claim_all(s) if c.batch_seq != open_old.seq]
        await s.finish([done(c) for c in claimed], [], T0 + 1)
        assert await s.purge_archived(T0 + HOUR - 1) == 0
        assert await s.purge_archived(T0 + HOUR) == 1
        assert await s.purge_archived(T0 + HOUR + 1) == 0  # once only
        kept = await assert_counts(s, old)
        assert (kept.status, kept.succeeded) == ("ended", 2)
        assert set((await result_lines(s, old)).values()) == {("succeeded", None)}
        assert all(v[1] is not None for v in (await result_lines(s, young)).values())
        assert (await reload(s, open_old)).status == "in_progress"

    store(scenario)
    assert asyncio.run(store.row_count(results)) == 1


# ------------------------------------------------------------------------------ results


def test_iter_results_pages_every_request_once_in_custom_id_order(store: StoreRunner) -> None:
    async def scenario(s: SqlStore) -> None:
        ws = await workspace(s, "a")
        custom_ids = ["b", "a", "c-1", "C", "_z", "a0"]
        record = await new_batch(s, ws, custom_ids=custom_ids)
        await new_batch(s, ws, custom_ids=custom_ids)  # same ids in another batch
        claimed = [c for c in await claim_all(s) if c.batch_seq == record.seq]
        await s.finish([done(c) for c in claimed[:3]], [], T0)
        await s.cancel_batch(ws, record.id, T0)
        seen: list[str] = []
        async for page in s.iter_results(record.seq, page_size=4):
            assert 0 < len(page) <= 4
            seen.extend(r.custom_id for r in page)
        assert seen == sorted(custom_ids)

    store(scenario)


# ------------------------------------------------------------------------------ list


def test_list_batches_pages_newest_first_in_both_directions(store: StoreRunner) -> None:
    async def scenario(s: SqlStore) -> None:
        ws = await workspace(s, "a")
        made = [await new_batch(s, ws, 1, created_at=T0 + i) for i in range(5)]
        newest_first = [b.id for b in reversed(made)]

        async def page(
            limit: int, after: str | None = None, before: str | None = None
        ) -> tuple[list[str], bool]:
            result = await s.list_batches(ws, limit=limit, after_id=after, before_id=before)
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

    store(scenario)


def test_list_batches_unknown_cursor_is_none(store: StoreRunner) -> None:
    async def scenario(s: SqlStore) -> None:
        ws = await workspace(s, "a")
        await new_batch(s, ws, 1)
        missing = ids.batch_id()
        assert await s.list_batches(ws, limit=5, after_id=missing, before_id=None) is None
        assert await s.list_batches(ws, limit=5, after_id=None, before_id=missing) is None
        empty = await s.list_batches(
            await workspace(s, "b"), limit=5, after_id=None, before_id=None
        )
        assert empty is not None and (empty.batches, empty.has_more) == ([], False)

    store(scenario)


# ------------------------------------------------------------------------------ workspaces


def test_every_lookup_is_scoped_to_its_workspace(store: StoreRunner) -> None:
    async def scenario(s: SqlStore) -> None:
        mine, theirs = await workspace(s, "mine"), await workspace(s, "theirs")
        assert mine != theirs
        record = await new_batch(s, mine, 2)
        other = await new_batch(s, theirs, 1)
        assert await s.get_batch(theirs, record.id) is None
        listed = await s.list_batches(theirs, limit=10, after_id=None, before_id=None)
        assert listed is not None and [b.id for b in listed.batches] == [other.id]
        assert await s.list_batches(theirs, limit=10, after_id=record.id, before_id=None) is None
        assert await s.list_batches(theirs, limit=10, after_id=None, before_id=record.id) is None
        assert await s.cancel_batch(theirs, record.id, T0) is None
        assert (await reload(s, record)).status == "in_progress"
        await s.cancel_batch(mine, record.id, T0)
        assert await s.delete_batch(theirs, record.id) is None
        assert await s.get_batch(mine, record.id) is not None
        assert await s.workspace_for_key(ids.hash_api_key("no such key")) is None

    store(scenario)


def test_keys_of_one_workspace_share_it(store: StoreRunner) -> None:
    async def scenario(s: SqlStore) -> None:
        first = await workspace(s, "team")
        await s.create_api_key("team", ids.hash_api_key("second key"), "sk-by-2", T0)
        assert await s.workspace_for_key(ids.hash_api_key("second key")) == first

    store(scenario)
