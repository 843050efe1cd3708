"""The embedded model behind a real server: sync Messages (plain and streamed) and a batch."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from harness import Api, ServerProcess, add_key

pytestmark = pytest.mark.local_model

MODEL = "smollm2-135m"
#: SDK 2.x dropped the deprecated ``temperature`` argument; older SDKs send it in the body.
GREEDY = {"extra_body": {"temperature": 0}}
#: Content a text-only model cannot take.
IMAGE_BLOCK = {
    "type": "image",
    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
}


@pytest.fixture(scope="module")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with no ``[[models]]`` configured: the embedded model is the default."""
    workdir: Path = tmp_path_factory.mktemp("local")
    server = ServerProcess(workdir, f"sqlite:///{workdir / 'db.sqlite'}", "").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(local_server: ServerProcess) -> anthropic.Anthropic:
    key = add_key(local_server.db_url, "local")
    return anthropic.Anthropic(api_key=key, base_url=local_server.base_url, timeout=300)


def test_models_lists_the_embedded_model(client: anthropic.Anthropic) -> None:
    assert [model.id for model in client.models.list()] == [MODEL]


def test_messages_create(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL,
        max_tokens=12,
        **GREEDY,
        messages=[{"role": "user", "content": "Name a primary color."}],
    )
    assert message.model == MODEL and message.id.startswith("msg_")
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.content[0].type == "text" and message.content[0].text
    assert 0 < message.usage.output_tokens <= 12 and message.usage.input_tokens > 5
    assert message.usage.service_tier == "standard"


def test_messages_stream_matches_create(client: anthropic.Anthropic) -> None:
    params = {
        "model": MODEL,
        "max_tokens": 16,
        **GREEDY,
        "messages": [{"role": "user", "content": "Say hello to the team."}],
    }
    expected = client.messages.create(**params)  # type: ignore[call-overload]
    with client.messages.stream(**params) as stream:  # type: ignore[arg-type]
        streamed_text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed_text == final.content[0].text == expected.content[0].text
    assert final.stop_reason == expected.stop_reason
    assert final.usage.output_tokens == expected.usage.output_tokens


def test_chat_completions_plain_and_streamed_match(local_server: ServerProcess) -> None:
    """The OpenAI surface on the embedded model: greedy decoding gives the same answer
    whole and streamed, with the same usage, each object checked against the SDK's types."""
    key = add_key(local_server.db_url, "local")
    chat = openai.OpenAI(
        api_key=key,
        base_url=f"{local_server.base_url}/v1",
        timeout=300,
        max_retries=0,
        _strict_response_validation=True,
    )
    asked: dict[str, Any] = {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Name a primary color."},
        ],
        "max_completion_tokens": 12,
        "temperature": 0,
        "seed": 1,  # greedy: accepted, changes nothing
    }
    whole = chat.chat.completions.create(**asked)
    [choice] = whole.choices
    assert choice.message.content and choice.finish_reason in ("stop", "length")
    stream = chat.chat.completions.create(
        **asked, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == choice.message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == choice.finish_reason
    assert chunks[-1].usage == whole.usage


def test_stop_sequence_through_the_api(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL,
        max_tokens=40,
        stop_sequences=["3"],
        **GREEDY,
        messages=[{"role": "user", "content": "Count from 1 to 10, separated by spaces."}],
    )
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "3"
    assert "3" not in message.content[0].text


def test_unsupported_content_is_a_clear_400(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError, match="image"):
        client.messages.create(
            model=MODEL,
            max_tokens=5,
            messages=[
                {
                    "role": "user",
                    "content": [IMAGE_BLOCK],
                }
            ],
        )


def test_batch_on_the_embedded_model(local_server: ServerProcess) -> None:
    api = Api(local_server.base_url, add_key(local_server.db_url, "local-batch"))
    requests: list[dict[str, object]] = [
        {
            "custom_id": f"q{n}",
            "params": {
                "model": MODEL,
                "max_tokens": 8 + n,
                "temperature": 0,
                "messages": [{"role": "user", "content": f"Give me {n + 2} words about tea."}],
            },
        }
        for n in range(8)
    ]
    requests.append(
        {
            "custom_id": "image",
            "params": {
                "model": MODEL,
                "max_tokens": 8,
                "messages": [
                    {
                        "role": "user",
                        "content": [IMAGE_BLOCK],
                    }
                ],
            },
        }
    )
    batch = api.create(requests)
    ended = api.wait_ended(batch["id"], timeout=300)
    assert ended["request_counts"]["succeeded"] == 8 and ended["request_counts"]["errored"] == 1
    results = {line["custom_id"]: line["result"] for line in api.results(batch["id"])}
    for n in range(8):
        message = results[f"q{n}"]["message"]
        assert message["usage"]["output_tokens"] <= 8 + n
        assert message["usage"]["service_tier"] == "batch"
    error = results["image"]["error"]["error"]
    assert error["type"] == "invalid_request_error" and "image" in error["message"]


def test_stream_is_live_token_by_token(local_server: ServerProcess) -> None:
    """Deltas arrive as tokens are generated, not as one block after the whole answer."""
    key = add_key(local_server.db_url, "live")
    body = {
        "model": MODEL,
        "max_tokens": 40,
        "temperature": 0,
        "stream": True,
        "stop_sequences": ["\n\n"],
        "messages": [{"role": "user", "content": "Describe a cup of tea in a few sentences."}],
    }
    arrivals: list[tuple[float, str]] = []
    data: dict[str, dict[str, Any]] = {}
    with httpx.stream(
        "POST",
        f"{local_server.base_url}/v1/messages",
        json=body,
        headers={"x-api-key": key},
        timeout=120,
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("event: "):
                arrivals.append((time.monotonic(), line.removeprefix("event: ")))
            elif line.startswith("data: "):
                data[arrivals[-1][1]] = json.loads(line.removeprefix("data: "))
    names = [name for _, name in arrivals]
    # A live message_start counts the prompt, as the API's does (LangChain reads it there).
    started = data["message_start"]["message"]["usage"]["input_tokens"]
    assert started > 5 and started == data["message_delta"]["usage"]["input_tokens"]
    deltas = [when for when, name in arrivals if name == "content_block_delta"]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert len(deltas) >= 10, names
    # The first words were on the wire well before the answer was complete.
    assert arrivals[-1][0] - deltas[0] > 0.05


def test_js_sdk_stream_is_live(local_server: ServerProcess) -> None:
    node = shutil.which("node")
    assert node, "node is required (the Makefile installs the JS SDK with npm)"
    key = add_key(local_server.db_url, "js-live")
    completed = subprocess.run(
        [node, "stream.mjs", local_server.base_url, key, MODEL],
        cwd=Path(__file__).with_name("js"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["events"] >= 5 and result["streamed"] == result["text"]
    assert result["usage"]["input_tokens"] > 0 and result["usage"]["output_tokens"] <= 30


WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
        "required": ["city"],
    },
}


def test_the_sdk_tool_use_flow(client: anthropic.Anthropic) -> None:
    """A forced call comes back as a ``tool_use`` block; its ``tool_result`` goes back in the
    next turn, with the call, and the model answers in text (streamed, as SDK users do)."""
    jsonschema = pytest.importorskip("jsonschema")
    question = {"role": "user", "content": "What is the weather in Paris right now?"}
    first = client.messages.create(
        model=MODEL,
        max_tokens=60,
        **GREEDY,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[question],  # type: ignore[list-item]
    )
    assert first.stop_reason == "tool_use"
    [call] = first.content
    assert call.type == "tool_use" and call.name == "get_weather" and call.id.startswith("toolu_")
    jsonschema.validate(call.input, WEATHER_TOOL["input_schema"])
    follow_up = {
        "model": MODEL,
        "max_tokens": 30,
        **GREEDY,
        "tools": [WEATHER_TOOL],
        "messages": [
            question,
            {"role": "assistant", "content": [block.model_dump() for block in first.content]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": "18 C, sunny"}
                ],
            },
        ],
    }
    with client.messages.stream(**follow_up) as stream:  # type: ignore[arg-type]
        answer = stream.get_final_message()
    assert answer.stop_reason in ("end_turn", "max_tokens", "tool_use")
    assert answer.content and answer.usage.input_tokens > first.usage.input_tokens


def test_structured_output_in_a_batch_and_sync(local_server: ServerProcess) -> None:
    """``output_config.format`` through the SDK and in a batch: JSON valid against the schema."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = {
        "type": "object",
        "properties": {
            "sentiment": {"enum": ["positive", "negative", "neutral"]},
            "score": {"type": "integer", "minimum": 1, "maximum": 5},
        },
        "required": ["sentiment", "score"],
    }
    reviews = ["Great product, works perfectly.", "Broke after a day.", "It is fine, I guess."]
    key = add_key(local_server.db_url, "local-structured")
    client = anthropic.Anthropic(api_key=key, base_url=local_server.base_url, timeout=300)
    message = client.messages.create(
        model=MODEL,
        max_tokens=30,
        messages=[{"role": "user", "content": reviews[0]}],
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    assert message.stop_reason == "end_turn"
    jsonschema.validate(json.loads(message.content[0].text), schema)
    api = Api(local_server.base_url, key)
    batch = api.create(
        [
            {
                "custom_id": f"r{index}",
                "params": {
                    "model": MODEL,
                    "max_tokens": 30,
                    "messages": [{"role": "user", "content": review}],
                    "output_config": {"format": {"type": "json_schema", "schema": schema}},
                },
            }
            for index, review in enumerate(reviews)
        ]
    )
    api.wait_ended(batch["id"], timeout=300)
    for line in api.results(batch["id"]):
        message = line["result"]["message"]
        assert message["stop_reason"] == "end_turn"
        jsonschema.validate(json.loads(message["content"][0]["text"]), schema)
