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
    chat, prefill = chat_turns(
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
    chat, _ = chat_turns(
        params(messages=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
    )
    assert chat == [{"role": "user", "content": "a\n\nb"}]


def test_final_assistant_turn_is_a_prefill() -> None:
    chat, prefill = chat_turns(
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
                "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
            },
            "tools: tool use is not supported",
        ),
        (
            {"messages": [{"role": "user", "content": "hi"}], "tool_choice": {"type": "any"}},
            "tool_choice: tool use is not supported",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
                    },
                ]
            },
            "messages.1.content.0: content blocks of type 'tool_use'",
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
    chat, prefill = chat_turns(
        params(
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                {"role": "system", "content": "Answer in French."},
            ]
        )
    )
    assert [turn["role"] for turn in chat] == ["user", "assistant", "system"] and prefill == ""
