"""Tool use and structured outputs through the official Python SDK against a real
``batchyard serve`` on loopback, serving the simulated engine: a forced tool call, the
``tool_result`` turn sent back, a JSON answer to ``output_config.format`` (and to the SDK's
``messages.parse``), streamed and in a Message Batch."""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Iterator
from typing import Any, Literal

import anthropic
import jsonschema
import pydantic
import pytest
from harness import ServerProcess

WEATHER: dict[str, Any] = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
}
FORCED: dict[str, Any] = {
    "tools": [WEATHER],
    "tool_choice": {"type": "tool", "name": "get_weather"},
}
TICKET: dict[str, Any] = {
    "type": "object",
    "properties": {
        "category": {"type": "string", "enum": ["billing", "bug", "account"]},
        "priority": {"type": "integer", "minimum": 1, "maximum": 5},
        "summary": {"type": "string", "maxLength": 80},
        "due": {"type": ["string", "null"], "format": "date"},
    },
    "required": ["category", "priority", "summary", "due"],
    "additionalProperties": False,
}
QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]
COMPLAINT = [{"role": "user", "content": "I was charged twice for my November invoice."}]


class Ticket(pydantic.BaseModel):
    """``messages.parse`` sends this through the SDK's ``transform_schema``, which moves the
    bounds into descriptions as hints; the simulated engine follows them, as a model would."""

    category: Literal["billing", "bug", "account"]
    priority: int = pydantic.Field(ge=1, le=5)
    tags: list[str] = pydantic.Field(max_length=3)
    due: datetime.date | None = None


@pytest.fixture
def client(sim_server: ServerProcess, api_key: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        api_key=api_key, base_url=sim_server.base_url, max_retries=0, timeout=60
    ) as sdk:
        yield sdk


def test_a_forced_tool_call_then_its_result_gets_a_text_answer(client: anthropic.Anthropic) -> None:
    called = client.messages.create(model="sim", max_tokens=256, messages=QUESTION, **FORCED)  # type: ignore[arg-type]
    assert called.stop_reason == "tool_use"
    [call] = called.content
    assert call.type == "tool_use" and call.name == "get_weather"
    assert call.id.startswith("toolu_")
    jsonschema.validate(call.input, WEATHER["input_schema"])

    history = [
        *QUESTION,
        {"role": "assistant", "content": [block.model_dump() for block in called.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18 C, sunny"}],
        },
    ]
    answered = client.messages.create(
        model="sim",
        max_tokens=64,
        messages=history,  # type: ignore[arg-type]
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert answered.stop_reason == "end_turn"
    assert [block.type for block in answered.content] == ["text"]
    # The call and its result are prompt words too, as count_tokens agrees.
    assert answered.usage.input_tokens > called.usage.input_tokens
    counted = client.messages.count_tokens(model="sim", messages=history, tools=[WEATHER])  # type: ignore[arg-type,list-item]
    assert counted.input_tokens == answered.usage.input_tokens


def test_an_output_format_gets_json_valid_against_its_schema(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model="sim",
        max_tokens=256,
        messages=COMPLAINT,  # type: ignore[arg-type]
        output_config={"format": {"type": "json_schema", "schema": TICKET}},
    )
    assert message.stop_reason == "end_turn"
    [block] = message.content
    assert block.type == "text"
    jsonschema.validate(json.loads(block.text), TICKET)


def test_the_sdks_parse_helper_gets_a_parsed_model(client: anthropic.Anthropic) -> None:
    """``messages.parse`` sends the model's (SDK-transformed) schema and parses the answer."""
    parsed = client.messages.parse(
        model="sim",
        max_tokens=256,
        messages=COMPLAINT,  # type: ignore[arg-type]
        output_format=Ticket,
    )
    assert isinstance(parsed.parsed_output, Ticket)


def test_streamed_tool_calls_and_json_arrive_whole(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model="sim",
        max_tokens=256,
        messages=QUESTION,  # type: ignore[arg-type]
        **FORCED,
    ) as stream:
        called = stream.get_final_message()
    [call] = called.content
    assert call.type == "tool_use" and called.stop_reason == "tool_use"
    jsonschema.validate(call.input, WEATHER["input_schema"])
    with client.messages.stream(
        model="sim",
        max_tokens=256,
        messages=COMPLAINT,  # type: ignore[arg-type]
        output_config={"format": {"type": "json_schema", "schema": TICKET}},
    ) as stream:
        text = stream.get_final_text()
    jsonschema.validate(json.loads(text), TICKET)


def test_a_batch_answers_tool_calls_and_json(client: anthropic.Anthropic) -> None:
    batch = client.messages.batches.create(
        requests=[
            {
                "custom_id": "call",
                "params": {"model": "sim", "max_tokens": 256, "messages": QUESTION, **FORCED},
            },
            {
                "custom_id": "json",
                "params": {
                    "model": "sim",
                    "max_tokens": 256,
                    "messages": COMPLAINT,
                    "output_config": {"format": {"type": "json_schema", "schema": TICKET}},
                },
            },
            {
                "custom_id": "refused",
                "params": {
                    "model": "sim",
                    "max_tokens": 256,
                    "messages": QUESTION,
                    "tools": [WEATHER],
                    "tool_choice": {"type": "tool", "name": "get_time"},
                },
            },
        ]  # type: ignore[list-item]
    )
    deadline = time.monotonic() + 60
    while client.messages.batches.retrieve(batch.id).processing_status != "ended":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    results = {entry.custom_id: entry.result for entry in client.messages.batches.results(batch.id)}

    called = results["call"]
    assert called.type == "succeeded"
    [call] = called.message.content
    assert call.type == "tool_use" and called.message.stop_reason == "tool_use"
    jsonschema.validate(call.input, WEATHER["input_schema"])

    answered = results["json"]
    assert answered.type == "succeeded"
    [block] = answered.message.content
    assert block.type == "text"
    jsonschema.validate(json.loads(block.text), TICKET)

    refused = results["refused"]
    assert refused.type == "errored"
    assert refused.error.error.type == "invalid_request_error"
    assert refused.error.error.message == (
        "tool_choice.name: 'get_time' is not the name of a tool in tools"
    )
