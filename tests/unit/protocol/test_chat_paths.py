"""A Messages path in an error is mapped back to the chat request's field it came from."""

from __future__ import annotations

import json
from typing import Any

import pytest

from batchyard.errors import EngineError, ParamsError
from batchyard.protocol.chat_translation import decode_request, translate

CHAT: dict[str, Any] = {
    "model": "m",
    "max_completion_tokens": 9,
    "stop": "END",
    "safety_identifier": "u-1",
    "messages": [
        {"role": "system", "content": "one"},
        {"role": "developer", "content": "two"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {
            "role": "assistant",
            "content": "calling",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "c2", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "r1"},
        {"role": "tool", "tool_call_id": "c2", "content": "r2"},
        {"role": "system", "content": "late"},
        {"role": "user", "content": "last"},
    ],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {}}},
}


@pytest.mark.parametrize(
    ("messages_path", "chat_path"),
    [
        ("system.1", "messages[1]"),
        ("messages.0", "messages[2]"),
        ("messages.0.content.1", "messages[2].content[1]"),
        ("messages.1.content.0", "messages[3].content"),
        ("messages.1.content.2", "messages[3].tool_calls[1]"),
        ("messages.2", "messages[4]"),
        ("messages.2.content.1", "messages[5]"),
        ("messages.3", "messages[6]"),
        ("messages.4.content", "messages[7].content"),
        ("tools.0.input_schema.properties", "tools[0].function.parameters.properties"),
        ("tools.0.name", "tools[0].function.name"),
        ("output_config.format.schema.type", "response_format.json_schema.schema.type"),
        ("output_config.format", "response_format"),
        ("metadata.user_id", "safety_identifier"),
        ("max_tokens", "max_completion_tokens"),
        ("stop_sequences.0", "stop"),
        ("messages.99", None),
        ("thinking", None),
    ],
)
def test_paths_map_back(messages_path: str, chat_path: str | None) -> None:
    paths = translate(decode_request(json.dumps(CHAT).encode()), in_batch=False).paths
    assert paths.chat_path(messages_path) == chat_path


def test_an_error_is_rewritten_only_for_invalid_requests() -> None:
    paths = translate(decode_request(json.dumps(CHAT).encode()), in_batch=False).paths
    error = paths.chat_error(ParamsError("messages.0.content.1: images are not supported"))
    assert error.message == "messages[2].content[1]: images are not supported"
    assert error.param == "messages[2].content[1]"
    assert str(error) == error.message
    overloaded = EngineError("overloaded_error", "messages.0: busy")
    assert paths.chat_error(overloaded).message == "messages.0: busy"
    unnamed = ParamsError("something is wrong")
    assert paths.chat_error(unnamed).message == "something is wrong"
