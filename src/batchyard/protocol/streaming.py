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
)

_encoder = msgspec.json.Encoder()
#: Characters per ``text_delta``; clients render deltas as they arrive.
_DELTA_CHARS = 64


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + _encoder.encode(payload) + b"\n\n"


def message_events(message: Message) -> Iterator[bytes]:
    start = msgspec.to_builtins(message)
    start.update(content=[], stop_reason=None, stop_sequence=None)
    start["usage"] = {**start["usage"], "output_tokens": 0}
    yield _event("message_start", {"type": "message_start", "message": start})
    yield _event("ping", {"type": "ping"})
    for index, block in enumerate(message.content):
        yield from _block_events(index, block)
    yield _event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": message.stop_reason, "stop_sequence": message.stop_sequence},
            "usage": {"output_tokens": message.usage.output_tokens},
        },
    )
    yield _event("message_stop", {"type": "message_stop"})


def _block_events(index: int, block: ContentBlock) -> Iterator[bytes]:
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
        yield start({"type": "text", "text": ""})
        for offset in range(0, len(block.text), _DELTA_CHARS):
            yield delta({"type": "text_delta", "text": block.text[offset : offset + _DELTA_CHARS]})
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
    yield _event("content_block_stop", {"type": "content_block_stop", "index": index})
