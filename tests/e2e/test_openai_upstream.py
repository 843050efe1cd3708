"""The ``openai`` engine against a real OpenAI-compatible server: ``transformers serve``
(from ``transformers[serving]``) on loopback, serving the embedded SmolLM2-135M's converted
weights, behind a real ``batchyard serve``, driven by the official SDK and raw HTTP.

Every test here talks to that server. What it cannot show (a 135M model with a chat
template that renders no tools rarely calls one; vLLM's and SGLang's own fields) is tested
on the exact JSON those servers send in tests/unit/engines/test_openai_translation.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from harness import Api, ServerProcess, add_key, free_port

from batchyard.engines.local.options import LocalOptions
from batchyard.engines.local.weights import converted_weights, embedded_gguf_path

pytestmark = [pytest.mark.local_model, pytest.mark.slow]

MODEL = "smol-openai"
#: The same upstream, configured as a server that takes ``top_k`` (it does not).
TOP_K_MODEL = "smol-openai-top-k"
#: SDK 2.x dropped the deprecated ``temperature`` argument; older SDKs send it in the body.
GREEDY = {"extra_body": {"temperature": 0}}
COUNT = [{"role": "user", "content": "Count from 1 to 10, separated by spaces."}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Get the current weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded model's converted weights, as a directory ``transformers serve`` loads:
    links to the cached files, with ``architectures`` set in a copy of the config (the
    conversion leaves it ``null``; the server picks the model class from it)."""
    cached, _ = converted_weights(embedded_gguf_path(), LocalOptions().resolved_cache_dir())
    directory = tmp_path_factory.mktemp("smollm2-hf")
    for source in cached.iterdir():
        if source.name != "config.json":
            (directory / source.name).symlink_to(source)
    config = json.loads((cached / "config.json").read_text())
    config["architectures"] = ["LlamaForCausalLM"]
    (directory / "config.json").write_text(json.dumps(config))
    return directory


@pytest.fixture(scope="module")
def transformers_serve(weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``transformers serve`` pinned to the weights; its ``/v1`` base URL."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("transformers-serve") / "serve.log"
    command = [
        str(Path(sys.executable).with_name("transformers")),
        "serve",
        str(weights),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "info",
    ]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                # `make install` installs transformers[serving]: a server that cannot start
                # is a failure to see, not a reason to skip the engine's only real check.
                pytest.fail(
                    "transformers serve exited before answering:\n"
                    f"{log_path.read_text(errors='replace')[-2000:]}"
                )
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"transformers serve not healthy:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def server(
    transformers_serve: str, weights: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    workdir: Path = tmp_path_factory.mktemp("openai")
    models = "".join(
        f"""
[[models]]
name = "{name}"
engine = "openai"
base_url = "{transformers_serve}"
upstream_model = "{weights}"
concurrency = 4
{extra}
"""
        for name, extra in ((MODEL, ""), (TOP_K_MODEL, "extra_sampling = true"))
    )
    config = "poll_interval_seconds = 0.2\n" + models
    server = ServerProcess(workdir, f"sqlite:///{workdir / 'db.sqlite'}", config).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> anthropic.Anthropic:
    key = add_key(server.db_url, "openai")
    return anthropic.Anthropic(api_key=key, base_url=server.base_url, timeout=300, max_retries=0)


def test_plain_answer_through_the_sdk(client: anthropic.Anthropic) -> None:
    """transformers serve: a system prompt and a user turn, answered as a Message."""
    message = client.messages.create(
        model=MODEL,
        max_tokens=12,
        system="You are a helpful assistant.",
        messages=[{"role": "user", "content": "Name a primary color."}],
        **GREEDY,
    )
    assert message.model == MODEL and message.id.startswith("msg_")
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.content[0].type == "text" and message.content[0].text
    assert 0 < message.usage.output_tokens <= 12 and message.usage.input_tokens > 5


def test_stop_sequence(client: anthropic.Anthropic) -> None:
    """transformers serve keeps the stop string in its text; the Message has it cut and
    names it, as Anthropic's API does."""
    message = client.messages.create(
        model=MODEL, max_tokens=40, stop_sequences=["5"], messages=COUNT, **GREEDY
    )
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "5"
    text = message.content[0].text  # type: ignore[union-attr]
    assert "4" in text and "5" not in text


def test_stream_is_live_and_matches_create(
    server: ServerProcess, client: anthropic.Anthropic
) -> None:
    """transformers serve's SSE relayed as Anthropic events as they arrive; the SDK's
    streamed message equals the plain answer (greedy)."""
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 60,
        "temperature": 0,
        "stop_sequences": ["7"],
        "messages": COUNT,
    }
    arrivals: list[tuple[float, str]] = []
    data: dict[str, dict[str, Any]] = {}
    text = ""
    with httpx.stream(
        "POST",
        f"{server.base_url}/v1/messages",
        json={**body, "stream": True},
        headers={"x-api-key": client.api_key},
        timeout=120,
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("event: "):
                arrivals.append((time.monotonic(), line.removeprefix("event: ")))
            elif line.startswith("data: "):
                event = data[arrivals[-1][1]] = json.loads(line.removeprefix("data: "))
                if event["type"] == "content_block_delta":
                    text += event["delta"]["text"]
    names = [name for _, name in arrivals]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    deltas = [when for when, name in arrivals if name == "content_block_delta"]
    assert len(deltas) >= 5, names
    assert arrivals[-1][0] - deltas[0] > 0.05  # the first words came well before the end
    assert "6" in text and "7" not in text
    assert data["message_delta"]["delta"]["stop_sequence"] == "7"
    assert data["message_delta"]["usage"]["input_tokens"] > 5

    sdk_params = {key: value for key, value in body.items() if key != "temperature"}
    plain = client.messages.create(**sdk_params, **GREEDY)
    with client.messages.stream(**sdk_params, **GREEDY) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == text == final.content[0].text == plain.content[0].text  # type: ignore[union-attr]
    assert final.stop_reason == plain.stop_reason == "stop_sequence"
    assert final.usage.output_tokens == plain.usage.output_tokens


def test_tool_round_trip(client: anthropic.Anthropic) -> None:
    """transformers serve takes the tools, a past tool call and its result as OpenAI
    function tools, ``tool_calls`` and a ``tool`` message. SmolLM2's chat template renders
    no tools, so it answers in text; whatever it chose maps back to a valid Message."""
    message = client.messages.create(
        model=MODEL,
        max_tokens=24,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "auto"},
        messages=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "call_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "Sunny, 24 C"},
                    {"type": "text", "text": "So, what should I wear?"},
                ],
            },
        ],
        **GREEDY,
    )
    assert message.content, "an answer"
    for block in message.content:
        if block.type == "tool_use":
            assert block.name == "get_weather" and isinstance(block.input, dict)
            assert message.stop_reason == "tool_use"
        else:
            assert block.type == "text" and block.text
            assert message.stop_reason in ("end_turn", "max_tokens")


def test_what_the_upstream_refuses_keeps_its_message(client: anthropic.Anthropic) -> None:
    """transformers serve answers 422 to ``top_k`` (not in OpenAI's schema): a model
    configured with ``extra_sampling`` sends it, and the client gets the upstream's words;
    a model without it refuses ``top_k`` here, naming it."""
    with pytest.raises(anthropic.BadRequestError, match=r"HTTP 422.*top_k"):
        client.messages.create(
            model=TOP_K_MODEL, max_tokens=8, messages=COUNT, extra_body={"top_k": 5}
        )
    with pytest.raises(anthropic.BadRequestError, match="top_k: not supported by smol-openai"):
        client.messages.create(model=MODEL, max_tokens=8, messages=COUNT, extra_body={"top_k": 5})


def test_count_tokens_needs_a_tokenize_route(client: anthropic.Anthropic) -> None:
    """transformers serve has no ``/tokenize`` (vLLM's): the count is refused, saying so."""
    with pytest.raises(anthropic.BadRequestError, match="count_tokens: not supported"):
        client.messages.count_tokens(model=MODEL, messages=COUNT)


def test_batch(server: ServerProcess) -> None:
    """transformers serve answers a batch's requests; what cannot be translated is an
    errored result naming the field, the rest succeed."""
    api = Api(server.base_url, add_key(server.db_url, "openai-batch"))
    requests: list[dict[str, object]] = [
        {
            "custom_id": f"q{n}",
            "params": {
                "model": MODEL,
                "max_tokens": 6 + n,
                "temperature": 0,
                "messages": [{"role": "user", "content": f"Give me {n + 2} words about tea."}],
            },
        }
        for n in range(4)
    ]
    requests.append(
        {
            "custom_id": "thinking",
            "params": {
                "model": MODEL,
                "max_tokens": 2048,
                "thinking": {"type": "enabled", "budget_tokens": 1024},
                "messages": COUNT,
            },
        }
    )
    batch = api.create(requests)
    ended = api.wait_ended(batch["id"], timeout=300)
    assert ended["request_counts"]["succeeded"] == 4 and ended["request_counts"]["errored"] == 1
    results = {line["custom_id"]: line["result"] for line in api.results(batch["id"])}
    for n in range(4):
        message = results[f"q{n}"]["message"]
        assert message["model"] == MODEL and message["content"][0]["text"]
        assert 0 < message["usage"]["output_tokens"] <= 6 + n
        assert message["usage"]["service_tier"] == "batch"
    error = results["thinking"]["error"]["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("thinking: 'enabled' thinking is not supported")
