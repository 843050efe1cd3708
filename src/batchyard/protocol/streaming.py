"""Server-sent events for ``stream: true``, in the Messages API's standard sequence.

``message_start`` → per block ``content_block_start`` / ``content_block_delta``… /
``content_block_stop`` → ``message_delta`` (stop reason, output tokens) → ``message_stop``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from batchyard.protocol.messages import (
    ContentBlock,
    Message,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    Usage,
)

_encoder = msgspec.json.Encoder()
#: Characters per ``text_delta``; clients render deltas as they arrive.
_DELTA_CHARS = 64


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + _encoder.encode(payload) + b"\n\n"


def message_events(message: Message) -> Iterator[bytes]:
    """The whole event sequence for an answer that is already complete."""
    start_usage = msgspec.structs.replace(message.usage, output_tokens=0)
    yield message_start(message.id, message.model, start_usage)
    for index, block in enumerate(message.content):
        yield from block_events(index, block)
    yield from message_end(message)


def message_start(message_id: str, model: str, usage: Usage) -> bytes:
    """``message_start`` then ``ping``: an empty assistant message, usage still to come.

    ``usage`` has every key of the non-streamed message's (cache counts, ``service_tier``):
    the SDKs build the final streamed message from this one, so a missing key would be
    ``None`` there where the non-streamed answer has ``0`` / ``"standard"``.
    """
    start: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": msgspec.to_builtins(usage),
    }
    return _event("message_start", {"type": "message_start", "message": start}) + _event(
        "ping", {"type": "ping"}
    )


def text_block_start(index: int) -> bytes:
    return _event(
        "content_block_start",
        {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "text", "text": ""},
        },
    )


def text_delta(index: int, text: str) -> bytes:
    return _event(
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "text_delta", "text": text},
        },
    )


def block_stop(index: int) -> bytes:
    return _event("content_block_stop", {"type": "content_block_stop", "index": index})


def message_end(message: Message) -> Iterator[bytes]:
    """``message_delta`` (stop reason, final usage) and ``message_stop``.

    The usage carries ``input_tokens`` too: a live stream starts before they are known, and
    the SDKs (0.75 and 2.x alike) take them from here.
    """
    yield _event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": message.stop_reason, "stop_sequence": message.stop_sequence},
            "usage": {
                "input_tokens": message.usage.input_tokens,
                "output_tokens": message.usage.output_tokens,
            },
        },
    )
    yield _event("message_stop", {"type": "message_stop"})


def error_event(error_type: str, message: str) -> bytes:
    """A failure after the stream started (the status line has already said 200)."""
    return _event("error", {"type": "error", "error": {"type": error_type, "message": message}})


def block_events(index: int, block: ContentBlock) -> Iterator[bytes]:
    def start(content_block: dict[str, Any]) -> bytes:
        return _event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": content_block},
        )

    def delta(payload: dict[str, Any]) -> bytes:
        return _event(
            "content_block_delta", {"type": "content_block_delta", "index": index, "delta": payload}
        )

    if isinstance(block, TextBlock):
        yield text_block_start(index)
        for offset in range(0, len(block.text), _DELTA_CHARS):
            yield text_delta(index, block.text[offset : offset + _DELTA_CHARS])
    elif isinstance(block, ToolUseBlock):
        yield start({"type": "tool_use", "id": block.id, "name": block.name, "input": {}})
        partial = _encoder.encode(block.input).decode()
        yield delta({"type": "input_json_delta", "partial_json": partial})
    elif isinstance(block, ThinkingBlock):
        yield start({"type": "thinking", "thinking": "", "signature": ""})
        yield delta({"type": "thinking_delta", "thinking": block.thinking})
        yield delta({"type": "signature_delta", "signature": block.signature})
    else:
        yield start(msgspec.to_builtins(block))
    yield block_stop(index)
