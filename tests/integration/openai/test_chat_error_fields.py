"""MEDIUM: an error found after translation (by Messages validation or the engine) names the
*Messages* field and the *Messages* message index, so the OpenAI envelope's ``param`` points
at a field the chat request does not have, or at the wrong message.

OpenAI's ``param`` names the request's own field (``messages[2].content[1]``,
``tools[0].function.parameters``, ``response_format``...). Fix: keep a map from each Messages
path back to the chat path it came from (turn index → chat message index, ``tools.N`` →
``tools[N].function``, ``output_config.format.schema`` → ``response_format.json_schema.schema``,
``metadata.user_id`` → ``user``) and rewrite the message and ``param`` of a ``ParamsError`` /
engine validation error on the chat route and in the batch error file.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

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
async def test_param_names_the_chat_field(make_sdk, case: str) -> None:  # type: ignore[no-untyped-def]
    """The 400's ``param`` (and the message's leading field) must be the chat request's
    field; today it is a Messages path (``messages.0.content.1``, ``tools.0.input_schema``,
    ``output_config.format.schema...``, ``metadata.user_id``) with Messages' turn indexes."""
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
