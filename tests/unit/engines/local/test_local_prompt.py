"""Prompt building, without a model."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from batchyard.engines.local.prompt import chat_turns
from batchyard.errors import ParamsError
from batchyard.protocol.messages import MessageCreateParams


def params(**fields: Any) -> MessageCreateParams:
    body = {"model": "smollm2-135m", "max_tokens": 16, **fields}
    return msgspec.convert(body, MessageCreateParams)


def test_string_and_text_block_content_and_system_blocks() -> None:
    chat, prefill, _ = chat_turns(
        params(
            system=[{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}],
                },
                {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": "Bye"},
            ],
        )
    )
    assert chat == [
        {"role": "system", "content": "Be brief.\n\nBe kind."},
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Bye"},
    ]
    assert prefill == ""


def test_consecutive_turns_of_one_role_are_joined() -> None:
    chat, _, _ = chat_turns(
        params(messages=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
    )
    assert chat == [{"role": "user", "content": "a\n\nb"}]


def test_final_assistant_turn_is_a_prefill() -> None:
    chat, prefill, _ = chat_turns(
        params(
            messages=[{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "Hi"}]
        )
    )
    assert chat == [{"role": "user", "content": "Say hi"}]
    assert prefill == "Hi"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "What is this?"},
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": "AA==",
                                },
                            },
                        ],
                    }
                ]
            },
            "messages.0.content.1: content blocks of type 'image' are not supported",
        ),
        (
            {
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            },
            "tools.0.type: server tool 'web_search_20250305' is not supported",
        ),
        (
            {"messages": [{"role": "user", "content": "hi"}], "tool_choice": {"type": "any"}},
            "tool_choice: 'any' needs at least one tool in tools",
        ),
        (
            {
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [{"name": "f", "input_schema": {"type": "object"}}],
                "tool_choice": {"type": "tool", "name": "g"},
            },
            "tool_choice.name: 'g' is not the name of a tool in tools",
        ),
        (
            {
                "messages": [{"role": "user", "content": "hi"}],
                "output_config": {"format": {"type": "json_object"}},
            },
            "output_config.format.type: 'json_object' is not supported",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
                    },
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": "t",
                                "content": [
                                    {"type": "image", "source": {"type": "url", "url": "u"}}
                                ],
                            }
                        ],
                    },
                ]
            },
            "messages.2.content.0.content.0: content blocks of type 'image'",
        ),
        (
            {"messages": [{"role": "assistant", "content": "I start"}]},
            "messages: the conversation must contain at least one user message",
        ),
        (
            {"messages": [{"role": "system", "content": "Be terse."}]},
            "messages: the conversation must contain at least one user message",
        ),
    ],
)
def test_unsupported_content_is_an_invalid_request(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ParamsError) as caught:
        chat_turns(params(**fields))
    assert caught.value.error_type == "invalid_request_error"
    assert caught.value.message.startswith(message)


def test_a_system_turn_may_close_the_conversation() -> None:
    """A system turn after the user's (an instruction for the answer) stays where it is."""
    chat, prefill, _ = chat_turns(
        params(
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                {"role": "system", "content": "Answer in French."},
            ]
        )
    )
    assert [turn["role"] for turn in chat] == ["user", "assistant", "system"] and prefill == ""


def test_tools_and_calls_are_rendered_in_the_tags_the_system_prompt_describes() -> None:
    weather = {
        "name": "get_weather",
        "description": "Current weather.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    chat, prefill, shape = chat_turns(
        params(
            tools=[weather],
            messages=[
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "Checking. "},
                        {
                            "type": "tool_use",
                            "id": "toolu_1",
                            "name": "get_weather",
                            "input": {"city": "Paris"},
                        },
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18 C"},
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_1",
                            "is_error": True,
                            "content": [{"type": "text", "text": "no such city"}],
                        },
                    ],
                },
            ],
        )
    )
    assert chat[0]["role"] == "system"
    assert "get_weather: Current weather. Input schema: " in chat[0]["content"]
    assert (
        '<tool_call>{"name": <tool name>, "input": <its input>}</tool_call>' in chat[0]["content"]
    )
    assert chat[2]["content"] == (
        'Checking. <tool_call>{"name": "get_weather", "input": {"city": "Paris"}}</tool_call>'
    )
    assert chat[3]["content"] == (
        "<tool_result>18 C</tool_result><tool_result error>no such city</tool_result>"
    )
    assert prefill == "" and shape.choice == "auto" and not shape.must_call


def test_a_format_is_described_after_the_system_prompt() -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    chat, _, shape = chat_turns(
        params(
            system="Be brief.",
            output_config={"format": {"type": "json_schema", "schema": schema}},
            messages=[{"role": "user", "content": "ok?"}],
        )
    )
    assert chat[0]["content"].startswith("Be brief.\n\nAnswer with only a JSON document")
    assert shape.json_schema == schema
