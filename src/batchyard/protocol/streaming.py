"""Server-sent events for ``stream: true``, in the Messages API's standard sequence.

``message_start`` → per block ``content_block_start`` / ``content_block_delta``… /
``content_block_stop`` → ``message_delta`` (stop reason, output tokens) → ``message_stop``.
"""

from __future__ import annotations

import re
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
from batchyard.protocol.routing import decode_raw_object, encode_raw_object, raw_value

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


#: The blank line that ends an event, in any of the line endings SSE allows.
EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
LINE_END = re.compile(rb"\r\n|\n|\r")


class StartRenamer:
    """Passes an SSE byte stream through, with ``message.model`` of its ``message_start``
    event set to ``model`` (a relayed stream names the model the client asked for).

    Events are held only until the ``message_start`` has gone by (it is the first one);
    after that every chunk passes as it arrives. Nothing else in the stream is touched.
    """

    def __init__(self, model: str) -> None:
        self._model = model
        self._pending = b""
        self._renamed = False

    def feed(self, chunk: bytes) -> bytes:
        """What can be sent now of everything received so far."""
        if self._renamed:
            return chunk
        self._pending += chunk
        ready: list[bytes] = []
        while match := EVENT_END.search(self._pending):
            event, self._pending = self._pending[: match.end()], self._pending[match.end() :]
            renamed = self._rename(event[: match.start()])
            if renamed is None:
                ready.append(event)
                continue
            ready += [renamed, match.group(), self._pending]
            self._renamed, self._pending = True, b""
            break
        return b"".join(ready)

    def flush(self) -> bytes:
        """The incomplete event still held when the stream ended."""
        rest, self._pending = self._pending, b""
        return rest

    def _rename(self, event: bytes) -> bytes | None:
        """``event`` (without its blank line) renamed, or ``None`` if not ``message_start``."""
        lines = LINE_END.split(event)
        data = [line for line in lines if line.startswith(b"data:")]
        if not data:
            return None
        payload = b"\n".join(line[5:].removeprefix(b" ") for line in data)
        try:
            decoded = decode_raw_object(payload)
            if bytes(decoded.get("type", b"")) != b'"message_start"' or "message" not in decoded:
                return None
            message = decode_raw_object(decoded["message"])
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            return None
        message["model"] = raw_value(self._model)
        decoded["message"] = msgspec.Raw(encode_raw_object(message))
        others = [line for line in lines if not line.startswith(b"data:")]
        return b"\n".join([*others, b"data: " + encode_raw_object(decoded)])
