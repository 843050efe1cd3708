"""What the OpenAI-surface tests share on the client side: the ``make_sdk`` fixture's type,
batch input lines, and a batch polled to its end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, Final

import openai
from openai.types import Batch

#: The ``make_sdk`` fixture: each call makes a client with a fresh key.
MakeSdk = Callable[[], Awaitable[openai.AsyncOpenAI]]

ENDPOINT: Final = "/v1/chat/completions"


def chat_line(custom_id: str, model: str = "sim", **body: Any) -> dict[str, Any]:
    """One batch input line: a chat completion of ``model``, ``body`` added to it."""
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": ENDPOINT,
        "body": {
            "model": model,
            "messages": [{"role": "user", "content": f"Say something about {custom_id}"}],
            **body,
        },
    }


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


async def finished_batch(client: openai.AsyncOpenAI, content: bytes, **create: Any) -> Batch:
    """Upload ``content`` as a batch input file, create the batch, poll until it ends."""
    uploaded = await client.files.create(file=("in.jsonl", content), purpose="batch")
    batch = await client.batches.create(
        input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h", **create
    )
    for _ in range(500):
        batch = await client.batches.retrieve(batch.id)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch
        await asyncio.sleep(0.02)
    raise AssertionError(f"batch {batch.id} did not finish: {batch}")
