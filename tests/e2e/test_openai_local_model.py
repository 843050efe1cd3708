"""The official ``openai`` Python SDK, unchanged but for ``base_url`` and ``api_key``, on the
embedded model behind a real server, every object validated strictly against the SDK's types:
a 20-request batch (upload, create, poll, download, every ``custom_id`` matched), a cancel, a
refused file naming its lines, and chat completions plain and streamed."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from harness import ServerProcess, add_key
from openai.types import Batch
from openai.types.chat import ChatCompletion

pytestmark = pytest.mark.local_model

MODEL = "smollm2-135m"
ENDPOINT = "/v1/chat/completions"
TOPICS = ["tea", "rain", "maps", "bread", "owls", "jazz", "chess", "snow", "kites", "clocks"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with no ``[[models]]`` configured: the embedded model is the default."""
    workdir: Path = tmp_path_factory.mktemp("openai-local")
    process = ServerProcess(workdir, f"sqlite:///{workdir / 'db.sqlite'}", "").start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{server.base_url}/v1",
        api_key=add_key(server.db_url, "openai"),
        timeout=300,
        max_retries=0,
        _strict_response_validation=True,
    )


def chat_line(custom_id: str, topic: str, max_tokens: int = 12) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": ENDPOINT,
        "body": {
            "model": MODEL,
            "max_tokens": max_tokens,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": "Answer in one short sentence."},
                {"role": "user", "content": f"Say something about {topic}."},
            ],
        },
    }


def upload(client: openai.OpenAI, lines: list[dict[str, Any]] | bytes) -> str:
    content = lines if isinstance(lines, bytes) else "".join(json.dumps(x) + "\n" for x in lines)
    data = content if isinstance(content, bytes) else content.encode()
    return client.files.create(file=("requests.jsonl", data), purpose="batch").id


def wait_final(client: openai.OpenAI, batch_id: str) -> Batch:
    deadline = time.monotonic() + 300
    while (batch := client.batches.retrieve(batch_id)).status not in (
        "completed",
        "failed",
        "expired",
        "cancelled",
    ):
        assert time.monotonic() < deadline, batch
        time.sleep(0.5)
    return batch


def test_twenty_requests_batch(client: openai.OpenAI) -> None:
    lines = [chat_line(f"q-{n:02d}", TOPICS[n % len(TOPICS)]) for n in range(20)]
    batch = client.batches.create(
        input_file_id=upload(client, lines), endpoint=ENDPOINT, completion_window="24h"
    )
    assert batch.status == "in_progress" and batch.model == MODEL
    batch = wait_final(client, batch.id)
    assert batch.status == "completed" and batch.request_counts is not None
    assert batch.request_counts.completed == 20 and batch.error_file_id is None
    assert batch.output_file_id is not None
    content = client.files.content(batch.output_file_id).content
    results = {line["custom_id"]: line for line in map(json.loads, content.decode().splitlines())}
    assert sorted(results) == [f"q-{n:02d}" for n in range(20)]
    for line in results.values():
        completion = ChatCompletion.model_validate(line["response"]["body"])
        assert completion.model == MODEL and completion.choices[0].message.content
        assert completion.choices[0].finish_reason in ("stop", "length")
        assert 0 < (completion.usage.completion_tokens if completion.usage else 0) <= 12
    # Greedy and batched the same way: one prompt, one answer, whichever row it sat in.
    by_topic = {
        TOPICS[n % len(TOPICS)]: results[f"q-{n:02d}"]["response"]["body"]["choices"][0]
        for n in range(20)
    }
    for n in range(20):
        again = results[f"q-{n:02d}"]["response"]["body"]["choices"][0]
        assert again["message"] == by_topic[TOPICS[n % len(TOPICS)]]["message"]


def test_cancel_and_a_refused_file(client: openai.OpenAI) -> None:
    # More than one worker holds at once (twice the engine's batch): the rest are canceled.
    lines = [chat_line(f"long-{n}", TOPICS[n % len(TOPICS)], 32) for n in range(200)]
    created = client.batches.create(
        input_file_id=upload(client, lines), endpoint=ENDPOINT, completion_window="24h"
    )
    assert client.batches.cancel(created.id).status in ("cancelling", "cancelled")
    batch = wait_final(client, created.id)
    assert batch.status == "cancelled" and batch.request_counts is not None
    assert batch.request_counts.failed > 0 and batch.error_file_id is not None

    bad = b'{"custom_id": "a", "method": "GET", "url": "/v1/chat/completions", "body": {}}\n'
    failed = client.batches.create(
        input_file_id=upload(client, bad + b"[1, 2\n"), endpoint=ENDPOINT, completion_window="24h"
    )
    assert failed.status == "failed" and failed.errors and failed.errors.data
    assert [(e.line, e.param) for e in failed.errors.data] == [(1, "method"), (2, None)]


def test_chat_completions_plain_and_streamed_agree(client: openai.OpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "Name a primary colour."}]
    plain = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=10, temperature=0
    )
    text = plain.choices[0].message.content
    assert text and plain.usage is not None and plain.usage.prompt_tokens > 5
    pieces, usage = [], None
    for chunk in client.chat.completions.create(
        model=MODEL,
        messages=messages,
        max_tokens=10,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        usage = chunk.usage or usage
    assert "".join(pieces) == text
    assert usage is not None and usage.completion_tokens == plain.usage.completion_tokens


def test_the_node_sdk_runs_the_same_flow(server: ServerProcess) -> None:
    """The official ``openai`` Node SDK: the 20-request batch, a cancel (200 requests, more
    than a worker holds at once), a refused file, listing, chat plain and streamed with equal
    greedy text, a file deleted."""
    node = shutil.which("node")
    assert node, "node is required (the Makefile installs the SDKs with npm)"
    key = add_key(server.db_url, "node")
    args = [f"{server.base_url}/v1", key, MODEL, MODEL, "200", "1"]
    completed = subprocess.run(
        [node, "openai_flow.mjs", *args],
        cwd=Path(__file__).with_name("js"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    assert summary["results"] == 20 and summary["cancelled"]["failed"] > 0
