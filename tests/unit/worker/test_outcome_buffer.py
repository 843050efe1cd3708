"""The outcome buffer on the in-memory store: flush on size or timer, nothing lost on failure."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from queued import HOUR, store_with_batch

from batchyard.store import Store
from batchyard.store.protocols import QueueStore
from batchyard.store.records import ClaimedRequest, Finished, Retry
from batchyard.worker.outcome_buffer import OutcomeBuffer

NOW = 1_800_000_000_000_000


class FlakyQueue:
    """The real in-memory queue, made to fail its next ``failures`` finishes (an injected
    fault: the in-memory store never fails on its own)."""

    def __init__(self, queue: QueueStore, failures: int = 0) -> None:
        self._queue = queue
        self.failures = failures
        self.flushes: list[int] = []

    async def finish(self, finished: Sequence[Finished], retries: Sequence[Retry], now: int) -> int:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database went away")
        self.flushes.append(len(finished) + len(retries))
        return await self._queue.finish(finished, retries, now)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._queue, name)


async def claimed(n: int) -> tuple[Store, list[ClaimedRequest]]:
    store, _ = await store_with_batch(n, NOW)
    return store, await store.queue.claim(limit=n, now=NOW, lease_until=NOW + HOUR)


def done(request: ClaimedRequest) -> Finished:
    return Finished(request.row_id, request.attempt, "succeeded", b'{"outcome":"succeeded"}')


def buffer_for(queue: QueueStore, flushed: list[int], **options: Any) -> OutcomeBuffer:
    values: dict[str, Any] = {"max_size": 100, "max_delay": 0.01, "retry_pause": 0.01}
    values.update(options)
    return OutcomeBuffer(
        queue, on_flushed=lambda f, r: flushed.extend(x.row_id for x in [*f, *r]), **values
    )


async def test_flushes_at_once_when_full_and_on_the_timer_otherwise() -> None:
    store, requests = await claimed(5)
    queue, flushed = FlakyQueue(store.queue), []
    buffer = buffer_for(queue, flushed, max_size=3, max_delay=30.0)
    task = asyncio.create_task(buffer.run())
    for request in requests[:3]:
        buffer.add(done(request))
    await asyncio.sleep(0.05)
    assert queue.flushes == [3], "a full buffer does not wait for the timer"
    buffer.add(done(requests[3]))
    await asyncio.sleep(0.05)
    assert queue.flushes == [3], "one outcome waits for the timer"
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert buffer.waiting() == {(requests[3].row_id, requests[3].attempt)}
    assert await buffer.flush()
    assert flushed == [r.row_id for r in requests[:4]]


async def test_a_failed_flush_keeps_its_outcomes_in_order_and_tries_again() -> None:
    store, requests = await claimed(4)
    queue, flushed = FlakyQueue(store.queue, failures=2), []
    buffer = buffer_for(queue, flushed)
    task = asyncio.create_task(buffer.run())
    for request in requests:
        buffer.add(done(request))
    for _ in range(100):
        if flushed:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert queue.failures == 0 and queue.flushes == [4]
    assert flushed == [r.row_id for r in requests]
    batch = await store.batches.get_batch(1, "msgbatch_1")
    assert batch is not None and batch.succeeded == 4


async def test_a_flush_cancelled_midway_keeps_its_outcomes_for_the_final_flush() -> None:
    store, requests = await claimed(2)
    started = asyncio.Event()

    class SlowQueue(FlakyQueue):
        async def finish(self, *args: Any) -> int:
            started.set()
            await asyncio.sleep(30)
            raise AssertionError("not reached")

    flushed: list[int] = []
    buffer = buffer_for(SlowQueue(store.queue), flushed)
    buffer.add(done(requests[0]))
    buffer.add(Retry(requests[1].row_id, requests[1].attempt, NOW))
    flush = asyncio.create_task(buffer.flush())
    await started.wait()
    flush.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flush
    assert buffer.waiting() == {(r.row_id, r.attempt) for r in requests}
