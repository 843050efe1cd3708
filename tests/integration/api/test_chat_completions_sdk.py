"""``POST /v1/chat/completions`` driven by the official ``openai`` SDK (async, on the app
in-process), every answer validated strictly against the SDK's types, on the simulated
engine: plain, streamed, tools both ways, structured outputs, and the errors an OpenAI
client acts on (status, exception class, ``param``)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import openai
import pydantic
import pytest
from harness import sim_config
from inprocess import InProcessServer

MODEL = "sim"
HELLO: list[Any] = [{"role": "user", "content": "Say hello."}]
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}


@pytest.fixture
def server_config() -> str:
    """The simulated engine with a rate limit, so answers carry their limits."""
    return sim_config(sim_rate_limit_rpm=6000)


@pytest.fixture
async def client(server: InProcessServer, api_key: str) -> Any:
    async with server.openai_sdk(api_key=api_key, max_retries=0) as sdk:
        yield sdk


async def test_a_plain_completion(client: openai.AsyncOpenAI, no_errors_logged: None) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[{"role": "developer", "content": "Be brief."}, *HELLO],
        max_completion_tokens=8,
    )
    completion = raw.parse()
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == MODEL
    [choice] = completion.choices
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.message.tool_calls is None
    assert choice.finish_reason in ("stop", "length")
    usage = completion.usage
    assert usage is not None
    assert usage.completion_tokens <= 8
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0
    assert raw.headers["x-ratelimit-limit-requests"] == "6000"
    assert int(raw.headers["x-ratelimit-remaining-requests"]) >= 0
    assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
    assert raw.headers["request-id"].startswith("req_")


async def test_a_streamed_completion_with_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text
    finishes = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices]
    assert finishes[-1] in ("stop", "length")
    assert all(chunk.usage is None for chunk in chunks[:-1])
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == len(text.split())


async def test_a_tool_call_and_its_result_in_the_history(client: openai.AsyncOpenAI) -> None:
    asked: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    called = await client.chat.completions.create(
        model=MODEL, messages=asked, tools=[WEATHER], tool_choice="required", max_tokens=64
    )
    [choice] = called.choices
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert set(json.loads(call.function.arguments)) == {"city"}
    # The SDK's own message object goes back into the history, as clients write it.
    history: list[Any] = [
        *asked,
        choice.message,
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 °C."},
    ]
    answered = await client.chat.completions.create(
        model=MODEL, messages=history, tools=[WEATHER], max_tokens=16
    )
    assert answered.choices[0].message.content
    assert answered.choices[0].message.tool_calls is None


async def test_a_streamed_tool_call(client: openai.AsyncOpenAI) -> None:
    forced: Any = {"type": "function", "function": {"name": "get_weather"}}
    stream = await client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=[WEATHER],
        tool_choice=forced,
        max_tokens=64,
        stream=True,
    )
    pieces = [
        piece
        async for chunk in stream
        for piece in (chunk.choices[0].delta.tool_calls or [] if chunk.choices else [])
    ]
    assert pieces[0].id
    assert pieces[0].function is not None
    assert pieces[0].function.name == "get_weather"
    arguments = "".join(piece.function.arguments or "" for piece in pieces if piece.function)
    assert set(json.loads(arguments)) == {"city"}


async def test_a_json_schema_response_format(client: openai.AsyncOpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {
            "category": {"enum": ["billing", "bug", "account"]},
            "urgent": {"type": "boolean"},
        },
        "required": ["category", "urgent"],
        "additionalProperties": False,
    }
    completion = await client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "I was charged twice!"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "ticket", "schema": schema, "strict": True},
        },
        max_tokens=64,
    )
    content = completion.choices[0].message.content
    assert content is not None
    jsonschema.validate(json.loads(content), schema)


class Ticket(pydantic.BaseModel):
    category: str
    priority: int


async def test_the_sdks_parse_helper(client: openai.AsyncOpenAI) -> None:
    parsed = await client.chat.completions.parse(
        model=MODEL,
        messages=[{"role": "user", "content": "The app crashes."}],
        response_format=Ticket,
        max_tokens=64,
    )
    assert isinstance(parsed.choices[0].message.parsed, Ticket)


async def test_n_other_than_one(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model=MODEL, messages=HELLO, n=2)
    assert caught.value.status_code == 400
    assert caught.value.param == "n"
    assert caught.value.type == "invalid_request_error"
    assert "n = 1" in caught.value.message


async def test_an_unknown_argument(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model=MODEL, messages=HELLO, extra_body={"colour": "red"}
        )
    assert caught.value.body == {
        "message": "Unrecognized request argument supplied: colour",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


async def test_a_refusal_of_the_engine_names_its_field(client: openai.AsyncOpenAI) -> None:
    """What the translation passes but the engine cannot honour: still a 400 by name."""
    image: Any = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": [image]}]
        )
    assert caught.value.param is not None, caught.value.body


async def test_an_unknown_model(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(model="no-such-model", messages=HELLO)
    assert caught.value.param == "model"


async def test_a_wrong_key(server: InProcessServer) -> None:
    async with server.openai_sdk(api_key="sk-by-wrong", max_retries=0) as sdk:
        with pytest.raises(openai.AuthenticationError) as caught:
            await sdk.chat.completions.create(model=MODEL, messages=HELLO)
    assert caught.value.code == "invalid_api_key"


async def test_a_streamed_request_refused_before_it_starts(client: openai.AsyncOpenAI) -> None:
    """A refusal found before the answer starts is a status, not an event in a 200 stream."""
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model=MODEL, messages=HELLO, stream=True, temperature=1.5
        )
    assert caught.value.param == "temperature"
