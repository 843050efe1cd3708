"""OpenAI's Batch API through the official ``openai`` SDK (strict response validation), on
the real app in process with the simulated engine: upload, create, poll, download, cancel,
failed files, per-request errors, listing, and the wall between the two surfaces."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from harness import message_request, sim_config
from inprocess import InProcessServer, running_app
from openai.types import Batch
from openai.types.chat import ChatCompletion

ENDPOINT = "/v1/chat/completions"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[InProcessServer]:
    async with running_app(tmp_path, sim_config()) as running:
        yield running


async def sdk(server: InProcessServer, workspace: str = "oa") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"{server.base_url}/v1",
        api_key=await server.add_key(workspace),
        http_client=openai.DefaultAsyncHttpxClient(transport=httpx2.ASGITransport(app=server.app)),
        _strict_response_validation=True,
        max_retries=0,
    )


def chat_line(custom_id: str, model: str = "sim", **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": ENDPOINT,
        "body": {
            "model": model,
            "messages": [{"role": "user", "content": f"Say something about {custom_id}"}],
            "max_tokens": 16,
            **body,
        },
    }


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


async def run_batch(
    client: openai.AsyncOpenAI, lines: list[dict[str, Any]], **create: Any
) -> tuple[Batch, Batch]:
    """Upload ``lines``, create the batch, wait for a final status: (created, final)."""
    uploaded = await client.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    created = await client.batches.create(
        input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h", **create
    )
    return created, await wait_final(client, created.id)


async def wait_final(client: openai.AsyncOpenAI, batch_id: str) -> Batch:
    for _ in range(1000):
        batch = await client.batches.retrieve(batch_id)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch
        await asyncio.sleep(0.02)
    raise AssertionError(f"batch {batch_id} did not finish: {batch}")


async def file_lines(client: openai.AsyncOpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    content = (await client.files.content(file_id)).content
    assert content.endswith(b"\n") and b"\n\n" not in content
    return [json.loads(line) for line in content.splitlines()]


async def test_twenty_requests_upload_create_poll_download(server: InProcessServer) -> None:
    client = await sdk(server)
    lines = [chat_line(f"req-{i:02d}") for i in range(20)]
    created, batch = await run_batch(client, lines, metadata={"job": "nightly"})
    assert created.status == "in_progress" and created.in_progress_at is not None
    assert created.output_file_id is None and created.model == "sim"
    assert batch.status == "completed", batch
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed) == (20, 20)
    assert batch.request_counts.failed == 0 and batch.error_file_id is None
    assert batch.metadata == {"job": "nightly"}
    assert batch.completed_at is not None and batch.finalizing_at is not None
    assert batch.usage is not None and batch.usage.output_tokens > 0

    output = await file_lines(client, batch.output_file_id)
    assert sorted(line["custom_id"] for line in output) == [f"req-{i:02d}" for i in range(20)]
    for line in output:
        assert line["error"] is None and line["id"].startswith("batch_req_")
        assert line["response"]["status_code"] == 200
        completion = ChatCompletion.model_validate(line["response"]["body"], strict=False)
        assert completion.choices[0].message.content
        assert completion.model == "sim"
    usage_total = sum(line["response"]["body"]["usage"]["completion_tokens"] for line in output)
    assert usage_total == batch.usage.output_tokens
    # Rendered on every read from the same outcomes: the same bytes, the size it states.
    again = (await client.files.content(batch.output_file_id or "")).content
    assert again == (await client.files.content(batch.output_file_id or "")).content
    info = await client.files.retrieve(batch.output_file_id or "")
    assert info.purpose == "batch_output" and info.bytes == len(again)
    assert info.filename == f"{batch.id}_output.jsonl"


async def test_request_errors_go_to_the_error_file(server: InProcessServer) -> None:
    client = await sdk(server)
    lines = [
        chat_line("ok"),
        chat_line("two-choices", n=2),
        chat_line("no-model", model="nope"),
    ]
    _, batch = await run_batch(client, lines)
    assert batch.status == "completed" and batch.model is None
    assert batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (1, 2)
    assert [line["custom_id"] for line in await file_lines(client, batch.output_file_id)] == ["ok"]
    errors = {line["custom_id"]: line for line in await file_lines(client, batch.error_file_id)}
    assert errors.keys() == {"two-choices", "no-model"}
    bad = errors["two-choices"]["response"]
    assert bad["status_code"] == 400 and bad["request_id"].startswith("req_")
    assert bad["body"]["error"]["type"] == "invalid_request_error"
    assert bad["body"]["error"]["param"] == "n"
    assert errors["no-model"]["response"]["status_code"] == 404


async def test_a_file_with_bad_lines_makes_a_failed_batch_naming_each(
    server: InProcessServer,
) -> None:
    client = await sdk(server)
    content = jsonl([chat_line("a"), chat_line("a"), {**chat_line("b"), "url": "/v1/embeddings"}])
    content += b"{not json\n"
    uploaded = await client.files.create(file=("bad.jsonl", content), purpose="batch")
    batch = await client.batches.create(
        input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h"
    )
    assert batch.status == "failed" and batch.failed_at is not None
    assert batch.errors is not None and batch.errors.data is not None
    assert [(e.line, e.code) for e in batch.errors.data] == [
        (2, "duplicate_custom_id"),
        (3, "mismatched_url"),
        (4, "invalid_json_line"),
    ]
    assert batch.request_counts is not None and batch.request_counts.total == 0
    assert batch.output_file_id is None and batch.error_file_id is None


async def test_cancel_goes_through_cancelling_to_cancelled(server: InProcessServer) -> None:
    client = await sdk(server)
    lines = [chat_line(f"s{i}", model="sim-slow") for i in range(8)]
    uploaded = await client.files.create(file=("slow.jsonl", jsonl(lines)), purpose="batch")
    created = await client.batches.create(
        input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h"
    )
    canceling = await client.batches.cancel(created.id)
    assert canceling.status in ("cancelling", "cancelled")
    assert canceling.cancelling_at is not None
    batch = await wait_final(client, created.id)
    assert batch.status == "cancelled" and batch.cancelled_at is not None
    assert batch.request_counts is not None
    counts = batch.request_counts
    assert counts.completed + counts.failed == counts.total == 8 and counts.failed >= 4
    errors = await file_lines(client, batch.error_file_id)
    assert {line["error"]["code"] for line in errors} == {"batch_cancelled"}
    assert all(line["response"] is None for line in errors)


async def test_create_errors_name_their_field(server: InProcessServer) -> None:
    client = await sdk(server)
    with pytest.raises(openai.NotFoundError) as missing:
        await client.batches.create(
            input_file_id="file-nope", endpoint=ENDPOINT, completion_window="24h"
        )
    assert missing.value.body is not None
    with pytest.raises(openai.BadRequestError) as bad_endpoint:
        await client.batches.create(
            input_file_id="file-nope", endpoint="/v1/embeddings", completion_window="24h"
        )
    assert isinstance(bad_endpoint.value.body, dict)
    assert bad_endpoint.value.body["param"] == "endpoint"
    uploaded = await client.files.create(file=("x.jsonl", jsonl([chat_line("a")])), purpose="batch")
    with pytest.raises(openai.BadRequestError) as window:
        await client.batches.create(
            input_file_id=uploaded.id,
            endpoint=ENDPOINT,
            completion_window="1h",  # type: ignore[arg-type]
        )
    assert isinstance(window.value.body, dict) and window.value.body["param"] == "completion_window"


async def test_list_pages_and_the_two_surfaces_do_not_see_each_other(
    server: InProcessServer,
) -> None:
    client = await sdk(server, "shared")
    ids = [(await run_batch(client, [chat_line("x")]))[0].id for _ in range(3)]
    page = await client.batches.list(limit=2)
    assert [b.id for b in page.data] == ids[::-1][:2] and page.has_more
    listed = [b.id async for b in client.batches.list(limit=2)]
    assert listed == ids[::-1]

    key = await server.add_key("shared")
    async with server.client(key) as anthropic_http:
        created = await anthropic_http.post(
            "/v1/messages/batches", json={"requests": [message_request("m")]}
        )
        anthropic_id = created.json()["id"]
        listed_there = (await anthropic_http.get("/v1/messages/batches")).json()["data"]
        assert [b["id"] for b in listed_there] == [anthropic_id]
        missing = await anthropic_http.get(f"/v1/messages/batches/{ids[0]}")
        assert missing.status_code == 404
    with pytest.raises(openai.NotFoundError):
        await client.batches.retrieve(anthropic_id)
    other = await sdk(server, "someone-else")
    with pytest.raises(openai.NotFoundError):
        await other.batches.retrieve(ids[0])


async def test_a_request_without_a_limit_gets_the_models_own(tmp_path: Path) -> None:
    """OpenAI needs no ``max_tokens``, Messages does: a chat request without one gets 4096,
    or the model's configured ``max_output_tokens`` where lower, in a batch and sync alike,
    instead of a refusal for a limit the client never set."""
    capped = '[[models]]\nname = "capped"\nengine = "simulated"\nmax_output_tokens = 50\n'
    async with running_app(tmp_path, sim_config(extra_models=capped)) as running:
        client = await sdk(running)
        line = chat_line("no-limit", model="capped")
        del line["body"]["max_tokens"]
        _, batch = await run_batch(client, [line])
        assert batch.status == "completed" and batch.request_counts is not None
        assert batch.request_counts.completed == 1
        answer = await client.chat.completions.create(
            model="capped", messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.choices[0].message.content
        with pytest.raises(openai.BadRequestError) as over:
            await client.chat.completions.create(
                model="capped", messages=[{"role": "user", "content": "hi"}], max_tokens=51
            )
        assert "50" in over.value.message
