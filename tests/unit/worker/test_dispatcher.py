"""The dispatcher on the in-memory store with the simulated engine: no database, no network.

What is checked is what the dispatcher decides: how much it claims and when it refills,
what it hands back on shutdown, that it keeps leases alive, that a batch canceled while its
requests sit in a lane does not run them, that requests for models nobody serves are errored,
and that retryable failures are retried with backoff until attempts run out.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest

from batchyard import ids
from batchyard.config import ModelConfig, Settings
from batchyard.engines.registry import ModelRegistry
from batchyard.store import MEMORY_URL, Store, open_store
from batchyard.store.protocols import QueueStore
from batchyard.store.records import BatchRecord, ClaimedRequest, NewBatch, NewRequest
from batchyard.timeutil import now_us
from batchyard.worker.dispatcher import Dispatcher
from batchyard.worker.maintenance import run_maintenance

HOUR = 3600 * 1_000_000


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": MEMORY_URL,
        "lease_seconds": 5.0,
        "poll_interval_seconds": 0.05,
        "retry_base_seconds": 0.05,
        "retry_max_seconds": 0.2,
    }
    values.update(overrides)
    return msgspec.convert(values, Settings)


def sim(name: str = "sim", **options: object) -> ModelConfig:
    concurrency = int(options.pop("concurrency", 4))  # type: ignore[call-overload]
    return ModelConfig(name=name, engine="simulated", concurrency=concurrency, options=options)


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    store = await open_store(MEMORY_URL)
    yield store
    await store.close()


async def create(store: Store, n: int, model: str = "sim", **params: object) -> BatchRecord:
    key_hash = f"hash-{now_us()}"
    await store.keys.create_api_key("ws", key_hash, "hint", now_us())
    workspace_id = await store.keys.workspace_for_key(key_hash)
    assert workspace_id is not None
    now = now_us()
    batch = NewBatch(
        id=ids.batch_id(),
        workspace_id=workspace_id,
        created_at=now,
        expires_at=now + 24 * HOUR,
        archives_at=now + 48 * HOUR,
    )
    body = {"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    body.update(params)
    items = [
        NewRequest(
            f"r{i:03d}", model, json.dumps({**body, "metadata": {"user_id": str(i)}}).encode()
        )
        for i in range(n)
    ]
    return await store.batches.create_batch(batch, items)


async def reload(store: Store, batch: BatchRecord) -> BatchRecord:
    record = await store.batches.get_batch(batch.workspace_id, batch.id)
    assert record is not None
    return record


async def wait_for(check: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():  # type: ignore[misc]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


class Running:
    """A dispatcher running in a task for the duration of an ``async with``."""

    def __init__(self, store: Store, models: list[ModelConfig], **overrides: object) -> None:
        self.registry = ModelRegistry(models)
        self.dispatcher = Dispatcher(
            store.queue, self.registry, settings(**overrides), store.rate_limits
        )
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Dispatcher:
        self.task = asyncio.create_task(self.dispatcher.run())
        return self.dispatcher

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        await self.registry.aclose()

    async def stop(self) -> None:
        assert self.task is not None
        if not self.task.done():
            self.task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await self.task


async def results(store: Store, batch: BatchRecord) -> dict[str, dict[str, object]]:
    """custom_id → {state, outcome (decoded)}."""
    found: dict[str, dict[str, object]] = {}
    async for page in store.batches.iter_outcomes(batch.seq):
        for row in page:
            outcome = json.loads(row.outcome) if row.outcome is not None else None
            found[row.custom_id] = {"state": row.state, "outcome": outcome}
    return found


async def test_runs_a_batch_to_its_end_with_batch_tier_outcomes(store: Store) -> None:
    batch = await create(store, 20)
    async with Running(store, [sim()]):
        await wait_for(lambda: _ended(store, batch))
    record = await reload(store, batch)
    assert (record.succeeded, record.processing, record.ended_at is not None) == (20, 0, True)
    found = await results(store, batch)
    assert len(found) == 20
    for row in found.values():
        outcome = row["outcome"]
        assert row["state"] == "succeeded" and isinstance(outcome, dict)
        assert outcome["outcome"] == "succeeded"
        assert outcome["message"]["usage"]["service_tier"] == "batch"


class RecordingQueue:
    """The store's real queue, recording the size of every claim (a spy, not a fake)."""

    def __init__(self, queue: QueueStore) -> None:
        self._queue = queue
        self.claims: list[int] = []

    async def claim(self, **kwargs: Any) -> list[ClaimedRequest]:
        claimed = await self._queue.claim(**kwargs)
        if claimed:
            self.claims.append(len(claimed))
        return claimed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._queue, name)


async def test_holds_at_most_twice_the_concurrency_and_refills(store: Store) -> None:
    batch = await create(store, 30)
    queue = RecordingQueue(store.queue)
    registry = ModelRegistry([sim(latency_ms=30, concurrency=3)])
    task = asyncio.create_task(Dispatcher(queue, registry, settings(), store.rate_limits).run())
    try:
        await wait_for(lambda: _ended(store, batch))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    # One set running and one waiting first, then a set at a time as lanes drain to the
    # refill point, never more than the 2 x 3 it may hold.
    assert queue.claims[0] == 6
    assert max(queue.claims) <= 6 and len(queue.claims) >= 5
    assert sum(queue.claims) == 30


async def test_shutdown_hands_everything_back_and_gives_unstarted_attempts_back(
    store: Store,
) -> None:
    batch = await create(store, 10)
    running = Running(store, [sim(latency_ms=60_000, concurrency=2)])
    async with running:
        await wait_for(lambda: _count(store, batch, "running", 4))
        await running.stop()
        assert await store.batches.count_states(batch.seq) == {"queued": 10}
    claimed = await store.queue.claim(limit=10, now=now_us(), lease_until=now_us() + HOUR)
    attempts = sorted(request.attempt for request in claimed)
    # Two were at the engine (their attempt counts); two only waited in a lane (given back).
    assert attempts == [1] * 8 + [2, 2]


async def test_keeps_leases_alive_while_a_request_runs(store: Store) -> None:
    batch = await create(store, 2)
    async with Running(store, [sim(latency_ms=1_200, concurrency=2)], lease_seconds=0.3):
        await wait_for(lambda: _count(store, batch, "running", 2))
        await asyncio.sleep(0.7)  # more than twice the lease: only extensions keep it held
        requeued = await store.sweeps.requeue_expired_leases(
            now_us(), max_attempts=4, exhausted=lambda: b"{}"
        )
        assert requeued == 0
        await wait_for(lambda: _ended(store, batch))
    assert (await reload(store, batch)).succeeded == 2


async def test_a_batch_canceled_while_its_requests_wait_in_a_lane_does_not_run_them(
    store: Store,
) -> None:
    batch = await create(store, 4)
    async with Running(store, [sim(latency_ms=400, concurrency=1)]) as dispatcher:
        await wait_for(lambda: _count(store, batch, "running", 2))  # one running, one waiting
        await store.batches.cancel_batch(batch.workspace_id, batch.id, now_us())
        dispatcher.wake()
        await wait_for(lambda: _ended(store, batch))
    record = await reload(store, batch)
    assert (record.succeeded, record.canceled) == (1, 3)


async def test_requests_for_models_no_engine_serves_and_bad_params_are_errored(
    store: Store,
) -> None:
    unknown = await create(store, 3, model="nobody-serves-this")
    invalid = await create(store, 2, max_tokens=-1)
    async with Running(store, [sim()]):
        await wait_for(lambda: _ended(store, unknown))
        await wait_for(lambda: _ended(store, invalid))
    for row in (await results(store, unknown)).values():
        assert row["outcome"] == {
            "outcome": "errored",
            "type": "not_found_error",
            "message": "model: nobody-serves-this",
            "request_id": row["outcome"]["request_id"],  # type: ignore[index]
        }
    for row in (await results(store, invalid)).values():
        outcome = row["outcome"]
        assert isinstance(outcome, dict) and outcome["type"] == "invalid_request_error"
        assert outcome["message"].startswith("max_tokens")


@pytest.mark.parametrize(("max_attempts", "state"), [(3, "succeeded"), (2, "errored")])
async def test_retryable_failures_are_retried_with_backoff_until_attempts_run_out(
    store: Store, max_attempts: int, state: str
) -> None:
    batch = await create(store, 1)
    model = sim(fail_first_calls=2, fail_first_error="overloaded_error")
    started = time.monotonic()
    async with Running(store, [model], max_attempts=max_attempts, retry_base_seconds=0.2):
        await wait_for(lambda: _ended(store, batch))
    elapsed = time.monotonic() - started
    [row] = (await results(store, batch)).values()
    assert row["state"] == state
    if state == "errored":
        assert row["outcome"]["type"] == "overloaded_error"  # type: ignore[index]
    # Equal-jitter backoff waits at least half of base x 2^(attempt-1) before each retry.
    assert elapsed >= 0.1 * (max_attempts - 1)


async def _ended(store: Store, batch: BatchRecord) -> bool:
    return (await reload(store, batch)).status == "ended"


async def _count(store: Store, batch: BatchRecord, state: str, n: int) -> bool:
    return (await store.batches.count_states(batch.seq)).get(state, 0) >= n


class HiccupQueue(RecordingQueue):
    """The real queue whose lease extensions fail for the first ``seconds`` (an injected
    fault: a short database outage), recording the attempt of every claim."""

    def __init__(self, queue: QueueStore, seconds: float) -> None:
        super().__init__(queue)
        self._until = time.monotonic() + seconds
        self.attempts: list[int] = []

    async def claim(self, **kwargs: Any) -> list[ClaimedRequest]:
        claimed = await super().claim(**kwargs)
        self.attempts += [request.attempt for request in claimed]
        return claimed

    async def extend_leases(self, leases: Any, until: int) -> None:
        if time.monotonic() < self._until:
            raise ConnectionError("database unreachable")
        await self._queue.extend_leases(leases, until)


async def test_a_lease_lost_in_a_short_outage_costs_one_attempt_not_all(store: Store) -> None:
    """The lease runs out during the outage and the request is re-claimed by this same
    worker under a new attempt; the stale attempt's outcome must not make the worker let go
    of the new attempt's lease (which would lose it again, attempt after attempt)."""
    batch = await create(store, 1)
    queue = HiccupQueue(store.queue, seconds=1.2)
    config = settings(lease_seconds=0.9, max_attempts=4)
    registry = ModelRegistry([sim(latency_ms=1500, concurrency=2)])
    dispatcher = asyncio.create_task(Dispatcher(queue, registry, config, store.rate_limits).run())
    sweeps = asyncio.create_task(run_maintenance(store.sweeps, config))
    try:
        await wait_for(lambda: _ended(store, batch), timeout=20)
    finally:
        for task in (dispatcher, sweeps):
            task.cancel()
        await asyncio.gather(dispatcher, sweeps, return_exceptions=True)
        await registry.aclose()
    [row] = (await results(store, batch)).values()
    assert row["state"] == "succeeded"
    assert queue.attempts[:2] == [1, 2] and len(queue.attempts) < 4
