"""The simulated engine honours tools and output formats by rule: ``tool_choice`` ``tool`` /
``any`` answer one ``tool_use`` whose input is valid against the tool's schema, ``auto``
answers text, ``output_config.format`` answers a JSON text valid against its schema, tool
blocks in the history are read as prompt words, and what it cannot honour is refused by path."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import msgspec
import pytest

from batchyard.config import ModelConfig
from batchyard.engines.simulated import SimulatedEngine
from batchyard.errors import ParamsError
from batchyard.protocol.messages import (
    Message,
    MessageCountTokensParams,
    MessageCreateParams,
    TextBlock,
    ToolUseBlock,
)

WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
        },
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
}
TIME = {
    "name": "get_time",
    "input_schema": {
        "type": "object",
        "properties": {"zone": {"type": "string", "format": "uuid"}},
        "required": ["zone"],
    },
}
REPORT = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "reviewed": {"type": "boolean"},
    },
    "required": ["title", "score", "tags", "reviewed"],
    "additionalProperties": False,
}
FORMAT = {"format": {"type": "json_schema", "schema": REPORT}}
USER = [{"role": "user", "content": "What is the weather in Paris?"}]


def engine(**options: Any) -> SimulatedEngine:
    return SimulatedEngine.from_config(ModelConfig(name="sim", engine="simulated", options=options))


def create(**fields: Any) -> MessageCreateParams:
    body = {"model": "sim", "max_tokens": 256, "messages": USER, **fields}
    return msgspec.convert(body, MessageCreateParams)


def count(**fields: Any) -> MessageCountTokensParams:
    return msgspec.convert({"model": "sim", "messages": USER, **fields}, MessageCountTokensParams)


def only_call(message: Message) -> ToolUseBlock:
    assert len(message.content) == 1
    block = message.content[0]
    assert isinstance(block, ToolUseBlock)
    return block


def only_text(message: Message) -> str:
    assert len(message.content) == 1
    block = message.content[0]
    assert isinstance(block, TextBlock)
    return block.text


def words(value: object) -> int:
    return len(json.dumps(value).split())


def test_it_says_it_honours_tools_and_structured_outputs() -> None:
    capabilities = engine().capabilities
    assert capabilities.tools and capabilities.structured_outputs
    assert not capabilities.thinking and not capabilities.image_input


async def test_a_forced_tool_is_called_with_input_valid_against_its_schema() -> None:
    for seed in range(20):
        message = await engine(seed=seed).create_message(
            create(tools=[WEATHER, TIME], tool_choice={"type": "tool", "name": "get_weather"})
        )
        call = only_call(message)
        assert call.name == "get_weather" and call.id.startswith("toolu_01")
        jsonschema.validate(call.input, WEATHER["input_schema"])
        assert message.stop_reason == "tool_use" and message.stop_sequence is None
        assert message.usage.output_tokens == words(call.input)
        assert message.usage.input_tokens == 6


async def test_any_calls_a_tool_drawn_from_the_seeded_randomness() -> None:
    def request() -> MessageCreateParams:
        return create(tools=[WEATHER, TIME], tool_choice={"type": "any"})

    chosen = set()
    for seed in range(20):
        first, again = [only_call(await engine(seed=seed).create_message(request())) for _ in "ab"]
        assert (first.name, first.input) == (again.name, again.input)  # same seed, same call
        schema = WEATHER if first.name == "get_weather" else TIME
        jsonschema.validate(first.input, schema["input_schema"])
        chosen.add(first.name)
    assert chosen == {"get_weather", "get_time"}


@pytest.mark.parametrize("choice", [None, {"type": "auto"}, {"type": "none"}])
async def test_without_a_forced_call_the_answer_is_text(choice: dict[str, Any] | None) -> None:
    """A model that chooses may or may not call; this one never does (module docstring)."""
    message = await engine(output_tokens=5).create_message(
        create(tools=[WEATHER], tool_choice=choice)
    )
    assert len(only_text(message).split()) == 5
    assert message.stop_reason == "end_turn"


@pytest.mark.parametrize("field", ["output_config", "output_format"])
async def test_an_output_format_is_answered_with_json_valid_against_its_schema(
    field: str,
) -> None:
    value = FORMAT if field == "output_config" else FORMAT["format"]
    for seed in range(20):
        message = await engine(seed=seed).create_message(create(**{field: value}))
        text = only_text(message)
        jsonschema.validate(json.loads(text), REPORT)
        assert message.stop_reason == "end_turn"
        assert message.usage.output_tokens == len(text.split())


async def test_a_forced_call_wins_over_the_output_format() -> None:
    message = await engine().create_message(
        create(tools=[WEATHER], tool_choice={"type": "any"}, output_config=FORMAT)
    )
    assert only_call(message).name == "get_weather"


async def test_tools_and_a_format_together_answer_json_when_no_call_is_forced() -> None:
    message = await engine().create_message(create(tools=[WEATHER], output_config=FORMAT))
    jsonschema.validate(json.loads(only_text(message)), REPORT)


async def test_json_longer_than_max_tokens_is_cut_like_any_answer() -> None:
    whole = only_text(await engine().create_message(create(output_config=FORMAT)))
    assert len(whole.split()) > 4
    message = await engine().create_message(create(output_config=FORMAT, max_tokens=4))
    text = only_text(message)
    assert text == " ".join(whole.split()[:4])  # the same document, cut after 4 words
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 4
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


async def test_a_tool_call_longer_than_max_tokens_keeps_the_members_that_fit() -> None:
    forced = {"tools": [WEATHER], "tool_choice": {"type": "tool", "name": "get_weather"}}
    whole = only_call(await engine().create_message(create(**forced))).input
    first = dict(list(whole.items())[:1])
    budget = words(first)
    message = await engine().create_message(create(**forced, max_tokens=budget))
    assert only_call(message).input == first
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == budget


async def test_stop_sequences_apply_to_a_json_text() -> None:
    message = await engine().create_message(
        create(output_config=FORMAT, stop_sequences=['"score"'])
    )
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == '"score"'
    assert only_text(message).startswith('{"title": ')


HISTORY: list[dict[str, Any]] = [
    *USER,
    {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me look."},
            {
                "type": "tool_use",
                "id": "toolu_01A",
                "name": "get_weather",
                "input": {"city": "Paris", "unit": "celsius"},
            },
        ],
    },
    {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "18 degrees, sunny"},
            {
                "type": "tool_result",
                "tool_use_id": "toolu_01A",
                "is_error": True,
                "content": [{"type": "text", "text": "timed out"}],
            },
        ],
    },
]


async def test_tool_blocks_in_the_history_are_read_as_prompt_words() -> None:
    # "What is the weather in Paris?" (6) "Let me look." (3)
    # 'get_weather {"city": "Paris", "unit": "celsius"}' (5) "18 degrees, sunny" (3)
    # "Error: timed out" (3)
    sim = engine()
    counted = await sim.count_tokens(count(messages=HISTORY, tools=[WEATHER]))
    message = await sim.create_message(create(messages=HISTORY, tools=[WEATHER]))
    assert counted == message.usage.input_tokens == 20
    assert message.stop_reason == "end_turn"


@pytest.mark.parametrize(
    ("messages", "refusal"),
    [
        pytest.param(
            [
                *HISTORY[:2],
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_01A",
                            "content": [
                                {"type": "text", "text": "see the chart"},
                                {
                                    "type": "image",
                                    "source": {
                                        "type": "base64",
                                        "media_type": "image/png",
                                        "data": "",
                                    },
                                },
                            ],
                        }
                    ],
                },
            ],
            "messages.2.content.0.content.1: content blocks of type 'image' are not supported",
            id="image-in-a-tool-result",
        ),
        pytest.param(
            [{"role": "user", "content": [HISTORY[1]["content"][1]]}],
            "messages.0.content.0: a 'tool_use' block belongs in an assistant turn",
            id="tool-use-in-a-user-turn",
        ),
    ],
)
async def test_what_the_history_holds_that_it_cannot_read_is_refused_by_path(
    messages: list[dict[str, Any]], refusal: str
) -> None:
    with pytest.raises(ParamsError) as caught:
        await engine().create_message(create(messages=messages))
    assert caught.value.message.startswith(refusal)
    with pytest.raises(ParamsError, match=f"^{refusal}"):
        await engine().count_tokens(count(messages=messages))


PATTERNED = {
    "name": "lookup_code",
    "input_schema": {
        "type": "object",
        "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}},
        "required": ["code"],
    },
}


@pytest.mark.parametrize(
    ("fields", "refusal"),
    [
        pytest.param(
            {"tools": [WEATHER, PATTERNED], "tool_choice": {"type": "tool", "name": "lookup_code"}},
            "tools.1.input_schema.properties.code.pattern: the JSON Schema keyword 'pattern' is "
            "not supported by sim",
            id="forced-tool-schema",
        ),
        pytest.param(
            {"tools": [WEATHER, PATTERNED], "tool_choice": {"type": "any"}},
            "tools.1.input_schema.properties.code.pattern: ",
            id="any-tool-schema",
        ),
        pytest.param(
            {
                "output_config": {
                    "format": {"type": "json_schema", "schema": PATTERNED["input_schema"]}
                }
            },
            "output_config.format.schema.properties.code.pattern: ",
            id="format-schema",
        ),
        pytest.param(
            {"tools": [WEATHER], "tool_choice": {"type": "tool", "name": "get_time"}},
            "tool_choice.name: 'get_time' is not the name of a tool in tools",
            id="unknown-tool-name",
        ),
        pytest.param(
            {"tools": [{"type": "web_search_20250305", "name": "web_search"}]},
            "tools.0.type: server tool 'web_search_20250305' is not supported by sim",
            id="server-tool",
        ),
        pytest.param(
            {"output_config": {"effort": "low"}},
            "output_config.effort: not supported by sim",
            id="effort",
        ),
    ],
)
async def test_what_it_cannot_honour_is_refused_naming_the_field(
    fields: dict[str, Any], refusal: str
) -> None:
    with pytest.raises(ParamsError) as caught:
        await engine().create_message(create(**fields))
    assert caught.value.message.startswith(refusal), caught.value.message
    with pytest.raises(ParamsError) as counted:
        await engine().count_tokens(count(**fields))
    assert counted.value.message == caught.value.message


async def test_the_tool_options_clients_send_are_honoured_as_they_are() -> None:
    """``strict`` (every input built is valid), ``cache_control``, ``input_examples`` and
    ``eager_input_streaming`` (what LangChain, pydantic-ai and the SDK may add) change nothing
    here; a tool reachable only through tool search or code execution is refused."""
    tool = {
        **WEATHER,
        "strict": True,
        "cache_control": {"type": "ephemeral"},
        "input_examples": [{"city": "Oslo", "unit": "celsius"}],
        "eager_input_streaming": True,
        "allowed_callers": ["direct"],
    }
    forced = {"type": "tool", "name": "get_weather"}
    call = only_call(await engine().create_message(create(tools=[tool], tool_choice=forced)))
    jsonschema.validate(call.input, WEATHER["input_schema"])
    for key, value, refusal in [
        ("defer_loading", True, "tools.0.defer_loading: not supported by sim"),
        (
            "allowed_callers",
            ["code_execution_20250825"],
            "tools.0.allowed_callers: only 'direct' calls are supported by sim",
        ),
    ]:
        with pytest.raises(ParamsError) as caught:
            await engine().create_message(create(tools=[{**tool, key: value}]))
        assert caught.value.message == refusal


async def test_a_tool_it_will_not_call_is_not_read() -> None:
    """With ``auto`` no call is built, so a schema it could not honour refuses nothing."""
    message = await engine().create_message(create(tools=[PATTERNED]))
    assert message.stop_reason == "end_turn"


async def test_accept_unsupported_drops_server_tools_and_ignores_keywords() -> None:
    relaxed = engine(accept_unsupported=True)
    server = {"type": "web_search_20250305", "name": "web_search"}
    text = await relaxed.create_message(
        create(tools=[server, WEATHER], tool_choice={"type": "tool", "name": "web_search"})
    )
    assert text.stop_reason == "end_turn"  # the choice named a dropped tool: read as auto
    call = only_call(
        await relaxed.create_message(create(tools=[server, PATTERNED], tool_choice={"type": "any"}))
    )
    assert call.name == "lookup_code" and isinstance(call.input["code"], str)
