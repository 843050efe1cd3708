"""Sharing a model between tenants, through the real app in process (SQLite, the simulated
engine, the official SDKs): a small batch is not stuck behind a big one, ``priority``
reorders a workspace's own batches, and ``max_queued_per_workspace`` refuses a create whole
with 429."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import anthropic
import openai
import pytest
from harness import message_request, sim_config
from inprocess import AsyncApi, InProcessServer, running_app

from batchyard import ids
from batchyard.store import open_store
from batchyard.store.records import NewBatch, NewRequest
from batchyard.timeutil import now_us

BIG, SMALL = 20_000, 20


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[InProcessServer]:
    limited = """
[[models]]
name = "sim-limited"
engine = "simulated"
latency_ms = 300
concurrency = 2
max_queued_per_workspace = 6
"""
    async with running_app(tmp_path, sim_config(limited)) as running:
        yield running


async def test_a_small_batch_ends_before_a_big_one_moves_another_tenth(
    server: InProcessServer,
) -> None:
    """Workspace A submits 20,000 requests, then B 20: B's batch ends before A has finished
    a further 10% of its own. Asserted on A's progress, not on time: with oldest-first
    claims B would wait for all of A's."""
    async with await server.api("a") as a, await server.api("b") as b:
        big = await a.create([message_request(f"a{i}") for i in range(BIG)])
        before = await a.wait_until(big["id"], lambda batch: _done(batch) >= 500)
        small = await b.create([message_request(f"b{i}") for i in range(SMALL)])
        await b.wait_ended(small["id"])
        after = await a.retrieve(big["id"])
        moved = _done(after) - _done(before)
        print(f"A finished {moved} more requests while B's {SMALL} ran")
        assert after["processing_status"] == "in_progress"
        assert moved < BIG // 10
        assert (await b.retrieve(small["id"]))["request_counts"]["succeeded"] == SMALL


def _done(batch: dict[str, object]) -> int:
    counts = batch["request_counts"]
    assert isinstance(counts, dict)
    return int(counts["succeeded"]) + int(counts["errored"])


async def test_priority_lets_a_workspaces_later_batch_go_first(server: InProcessServer) -> None:
    """``sim-slow`` runs two at a time and a worker holds four: the rest of the first batch
    waits in the queue, and the later batch with a higher priority is claimed before it."""
    client = server.sdk(api_key=await server.add_key("p"))
    first = await client.messages.batches.create(
        requests=[message_request(f"low{i}", "sim-slow") for i in range(10)]  # type: ignore[misc]
    )
    urgent = await client.messages.batches.create(
        requests=[message_request(f"high{i}", "sim-slow") for i in range(2)],  # type: ignore[misc]
        extra_body={"priority": 10},
    )
    while (await client.messages.batches.retrieve(urgent.id)).processing_status != "ended":
        await asyncio.sleep(0.02)
    still = await client.messages.batches.retrieve(first.id)
    assert still.processing_status == "in_progress"
    assert still.request_counts.processing >= 4


async def test_a_priority_outside_its_range_is_refused_naming_it(server: InProcessServer) -> None:
    client = server.sdk(api_key=await server.add_key("p"), max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.batches.create(
            requests=[message_request("x")],  # type: ignore[list-item]
            extra_body={"priority": 1000},
        )
    assert caught.value.body["error"]["message"].startswith("priority:")  # type: ignore[index]


async def test_a_create_over_the_queue_limit_is_refused_whole_with_429(
    server: InProcessServer,
) -> None:
    """``sim-limited`` allows 6 queued per workspace: a second batch of 6 while the first still
    waits (a worker holds at most 4 of them) is refused; another workspace is not affected,
    and the refused create left nothing behind."""
    key = await server.add_key("q")
    client = server.sdk(api_key=key, max_retries=0)
    kept = await client.messages.batches.create(
        requests=[message_request(f"r{i}", "sim-limited") for i in range(6)]  # type: ignore[misc]
    )
    with pytest.raises(anthropic.RateLimitError) as caught:
        await client.messages.batches.create(
            requests=[message_request(f"s{i}", "sim-limited") for i in range(6)]  # type: ignore[misc]
        )
    message = caught.value.body["error"]["message"]  # type: ignore[index]
    assert "max_queued_per_workspace" in message and "'sim-limited'" in message
    assert caught.value.response.headers["retry-after"] == "30"
    with pytest.raises(anthropic.BadRequestError) as never:  # could never fit: no retry
        await client.messages.batches.create(
            requests=[message_request(f"t{i}", "sim-limited") for i in range(7)]  # type: ignore[misc]
        )
    assert "more than the 6 a workspace may have queued" in str(never.value)
    assert [batch.id async for batch in client.messages.batches.list()] == [kept.id]
    other = server.sdk(api_key=await server.add_key("other"), max_retries=0)
    await other.messages.batches.create(
        requests=[message_request(f"o{i}", "sim-limited") for i in range(6)]  # type: ignore[misc]
    )

    oa = server.openai_sdk(api_key=key, max_retries=0)
    line = {
        "custom_id": "c",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "sim-limited", "messages": [{"role": "user", "content": "hi"}]},
    }
    content = b"".join(
        json.dumps({**line, "custom_id": f"c{i}"}).encode() + b"\n" for i in range(6)
    )
    uploaded = await oa.files.create(file=("in.jsonl", content), purpose="batch")
    with pytest.raises(openai.RateLimitError) as refused:
        await oa.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    assert "max_queued_per_workspace" in refused.value.message
    assert not (await oa.batches.list()).data


async def test_many_one_request_batches_run_without_waiting_for_the_poll(tmp_path: Path) -> None:
    """A claim shares out at most 64 batches, so with 640 one-request batches queued when
    the worker starts, each claim is short of its limit while more is queued; the worker
    claims again at once rather than at its next poll (30 s here)."""
    store = await open_store(f"sqlite:///{tmp_path / 'batchyard.db'}")
    key = "sk-by-many-batches"
    await store.keys.create_api_key("many", ids.hash_api_key(key), "sk-by", now_us())
    workspace_id = await store.keys.workspace_for_key(ids.hash_api_key(key))
    assert workspace_id is not None
    params = json.dumps(message_request("only")["params"]).encode()
    made = []
    for _ in range(640):
        now = now_us()
        new = NewBatch(ids.batch_id(), workspace_id, now, now + 3600 * 10**6, now + 7200 * 10**6)
        made.append(await store.batches.create_batch(new, [NewRequest("only", "sim", params)]))
    await store.close()
    config = sim_config(poll_interval_seconds=30, sim_latency_ms=0, sim_concurrency=256)
    async with running_app(tmp_path, config) as server, AsyncApi(server.client(key)) as api:
        for batch in made:
            await api.wait_ended(batch.id, timeout=15)
