"""A chat completion refused after its translation (by the Messages validation or by the
engine) names the chat request's own field in ``param`` and at the start of the message:
``messages[2].content[1]``, ``tools[0].function.parameters``, ``response_format``, with the
chat request's message indexes. That is what OpenAI does, and what a client reads to point
at the offending part of its request."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai_sdk import MakeSdk

SYSTEM = [{"role": "system", "content": "sys"}, {"role": "developer", "content": "dev"}]
TOOL = {
    "type": "function",
    "function": {"name": "get_w", "parameters": {"type": "object", "properties": {}}},
}

CASES: dict[str, tuple[dict[str, Any], str]] = {
    # Two leading system messages: the user message is messages[2], Messages' turn 0.
    "image_after_system_messages": (
        {
            "messages": [
                *SYSTEM,
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look"},
                        {"type": "image_url", "image_url": {"url": "https://e.com/a.png"}},
                    ],
                },
            ]
        },
        "messages[2].content[1]",
    ),
    "unanswered_tool_message_after_system_messages": (
        {
            "messages": [
                *SYSTEM,
                {"role": "user", "content": "hi"},
                {"role": "tool", "tool_call_id": "call_9", "content": "sunny"},
            ]
        },
        "messages[3]",
    ),
    "tool_parameters_not_an_object": (
        {
            "tools": [
                {"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}
            ],
            "tool_choice": "required",
        },
        "tools[0].function.parameters",
    ),
    "tool_name_with_spaces": (
        {"tools": [{"type": "function", "function": {"name": "bad name!"}}]},
        "tools[0].function.name",
    ),
    "schema_keyword_the_engine_cannot_honour": (
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "x",
                    "schema": {
                        "type": "object",
                        "properties": {"a": {"type": "string", "pattern": "^a"}},
                    },
                },
            }
        },
        "response_format.json_schema.schema",
    ),
    "user_too_long": ({"user": "u" * 1000}, "user"),
}


@pytest.mark.parametrize("case", CASES)
async def test_param_names_the_chat_field(make_sdk: MakeSdk, case: str) -> None:
    """The 400's ``param`` and the message's leading field are the chat request's field, not
    a path of the Messages request it was translated to (``messages.0.content.1``,
    ``tools.0.input_schema``, ``metadata.user_id``)."""
    extra, expected = CASES[case]
    client = await make_sdk()
    body: dict[str, Any] = {
        "model": "sim",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": "hi"}],
    }
    body.update(extra)
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(**body)
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["param"] is not None and error["param"].startswith(expected), error
    assert error["message"].startswith(expected), error
