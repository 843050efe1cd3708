"""Results rendered at read time by the batch service, on the in-memory store."""

from __future__ import annotations

import asyncio
import json

import msgspec
import pytest

from batchyard.config import Settings
from batchyard.errors import StoreError
from batchyard.protocol import outcomes
from batchyard.protocol.messages import Message, TextBlock, Usage
from batchyard.service.batches import BatchService, Caller
from batchyard.store import MEMORY_URL, open_store
from batchyard.store.records import Finished
from batchyard.timeutil import now_us


def body(n: int) -> bytes:
    params = {"model": "m", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]}
    return json.dumps(
        {"requests": [{"custom_id": f"r{i:05d}", "params": params} for i in range(n)]}
    ).encode()


def answer() -> bytes:
    message = Message(
        id="msg_01x",
        model="m",
        content=[TextBlock(text="ok")],
        stop_reason="end_turn",
        stop_sequence=None,
        usage=Usage(input_tokens=3, output_tokens=1),
    )
    return outcomes.encode(outcomes.succeeded(msgspec.json.encode(message)))


async def test_a_download_cut_by_the_retention_purge_breaks_off_instead_of_ending() -> None:
    store = await open_store(MEMORY_URL)
    await store.keys.create_api_key("ws", "h", "hint", now_us())
    workspace_id = await store.keys.workspace_for_key("h")
    assert workspace_id is not None
    settings = msgspec.convert({"expiry_seconds": 0.3, "retention_seconds": 0.3}, Settings)
    service = BatchService(store.batches, settings)
    caller = Caller(workspace_id=workspace_id, public_url="http://x")
    batch = await service.create(caller, body(2500))
    claimed = await store.queue.claim(limit=2500, now=now_us(), lease_until=now_us() + 10**9)
    finished = [Finished(c.row_id, c.attempt, "succeeded", answer()) for c in claimed]
    assert await store.queue.finish(finished, [], now_us()) == 2500

    chunks = await service.results(caller, batch.id)
    first = await anext(aiter(chunks))
    assert first.count(b"\n") == 1000 and b'"service_tier":"batch"' in first
    await asyncio.sleep(0.35)
    assert await store.sweeps.purge_archived(now_us(), limit=10_000) == 2500
    with pytest.raises(StoreError, match="archived during the download"):
        await anext(aiter(chunks))


async def test_a_download_cut_by_a_delete_breaks_off_instead_of_ending() -> None:
    store = await open_store(MEMORY_URL)
    await store.keys.create_api_key("ws", "h", "hint", now_us())
    workspace_id = await store.keys.workspace_for_key("h")
    assert workspace_id is not None
    service = BatchService(store.batches, msgspec.convert({}, Settings))
    caller = Caller(workspace_id=workspace_id, public_url="http://x")
    batch = await service.create(caller, body(2500))
    claimed = await store.queue.claim(limit=2500, now=now_us(), lease_until=now_us() + 10**9)
    finished = [Finished(c.row_id, c.attempt, "succeeded", answer()) for c in claimed]
    await store.queue.finish(finished, [], now_us())

    complete = [chunk async for chunk in await service.results(caller, batch.id)]
    assert sum(chunk.count(b"\n") for chunk in complete) == 2500

    chunks = await service.results(caller, batch.id)
    assert (await anext(aiter(chunks))).count(b"\n") == 1000
    await service.delete(caller, batch.id)
    with pytest.raises(StoreError, match="deleted during the download"):
        await anext(aiter(chunks))
