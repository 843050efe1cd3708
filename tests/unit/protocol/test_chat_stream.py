"""A Messages SSE stream rewritten as Chat Completions chunks, without a server: the input is
what engines send (protocol/streaming.py's events) or a relay's upstream (hand-written,
with events and blocks a chat stream has no place for), fed in pieces cut anywhere."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.chat import ChatCompletionChunk

from batchyard.protocol.chat_stream import ChatChunks
from batchyard.protocol.messages import Message, TextBlock, ToolUseBlock, Usage
from batchyard.protocol.streaming import error_event, message_events


def chunks_of(stream: bytes, *, include_usage: bool, piece: int = 7) -> list[dict[str, Any]]:
    """The ``data:`` payloads out of ``stream``, fed ``piece`` bytes at a time; each chunk
    checked against the SDK's type; ``[DONE]`` as the string."""
    chunks = ChatChunks(
        completion_id="chatcmpl-1", created=1_700_000_000, include_usage=include_usage
    )
    out = b"".join(chunks.feed(stream[at : at + piece]) for at in range(0, len(stream), piece))
    out += chunks.close()
    assert out.endswith(b"\n\n")
    payloads: list[dict[str, Any]] = []
    for event in out.split(b"\n\n")[:-1]:
        assert event.startswith(b"data: ")
        data = event[len(b"data: ") :]
        if data == b"[DONE]":
            payloads.append({"done": True})
            continue
        payload = json.loads(data)
        if "error" not in payload:
            ChatCompletionChunk.model_validate_json(data, strict=True)
        payloads.append(payload)
    return payloads


def answer(*blocks: TextBlock | ToolUseBlock, stop_reason: Any = "end_turn") -> bytes:
    message = Message(
        id="msg_1",
        model="sim",
        content=list(blocks),
        stop_reason=stop_reason,
        stop_sequence=None,
        usage=Usage(input_tokens=12, output_tokens=5, cache_read_input_tokens=4),
    )
    return b"".join(message_events(message))


def test_text_with_usage() -> None:
    chunks = chunks_of(answer(TextBlock(text="Hello, " * 20)), include_usage=True)
    assert chunks[-1] == {"done": True}
    first, *middle, finish, last, _ = chunks
    assert first["choices"] == [
        {
            "index": 0,
            "delta": {"role": "assistant", "content": ""},
            "logprobs": None,
            "finish_reason": None,
        }
    ]
    assert {chunk["id"] for chunk in chunks[:-1]} == {"chatcmpl-1"}
    assert {chunk["model"] for chunk in chunks[:-1]} == {"sim"}
    assert all(chunk["usage"] is None for chunk in chunks[:-2])
    assert "".join(chunk["choices"][0]["delta"]["content"] for chunk in middle) == "Hello, " * 20
    assert finish["choices"][0]["delta"] == {}
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert last["choices"] == []
    assert last["usage"] == {
        "prompt_tokens": 16,
        "completion_tokens": 5,
        "total_tokens": 21,
        "prompt_tokens_details": {"cached_tokens": 4},
    }


def test_without_include_usage_no_chunk_has_a_usage_key() -> None:
    chunks = chunks_of(answer(TextBlock(text="Hi")), include_usage=False, piece=1)
    assert chunks[-1] == {"done": True}
    assert all("usage" not in chunk for chunk in chunks[:-1])
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


def test_tool_calls() -> None:
    calls = [
        ToolUseBlock(id="toolu_1", name="get_weather", input={"city": "Paris"}),
        ToolUseBlock(id="toolu_2", name="get_time", input={}),
    ]
    stream = answer(TextBlock(text="Let me look."), *calls, stop_reason="tool_use")
    chunks = chunks_of(stream, include_usage=False)
    pieces = [
        piece
        for chunk in chunks[:-1]
        for piece in chunk["choices"][0]["delta"].get("tool_calls", [])
    ]
    assert pieces[0] == {
        "index": 0,
        "id": "toolu_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    arguments = {0: "", 1: ""}
    for piece in pieces:
        arguments[piece["index"]] += piece["function"]["arguments"]
    assert json.loads(arguments[0]) == {"city": "Paris"}
    assert json.loads(arguments[1]) == {}
    assert [piece["id"] for piece in pieces if "id" in piece] == ["toolu_1", "toolu_2"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


def event(name: str, payload: dict[str, Any], newline: str = "\n") -> bytes:
    return f"event: {name}{newline}data: {json.dumps(payload)}{newline}{newline}".encode()


def block_start(index: int, block: dict[str, Any]) -> bytes:
    payload = {"type": "content_block_start", "index": index, "content_block": block}
    return event("content_block_start", payload)


def block_delta(index: int, delta: dict[str, Any]) -> bytes:
    payload = {"type": "content_block_delta", "index": index, "delta": delta}
    return event("content_block_delta", payload)


def test_a_relayed_stream_with_blocks_a_chat_has_no_place_for() -> None:
    """CRLF line endings, ``ping``, a thinking block, an unknown event: only the text shows."""
    start = {
        "type": "message_start",
        "message": {"id": "msg_1", "model": "claude-x", "usage": {"input_tokens": 3}},
    }
    stream = b"".join(
        [
            event("message_start", start, "\r\n"),
            event("ping", {"type": "ping"}, "\r\n"),
            block_start(0, {"type": "thinking", "thinking": ""}),
            block_delta(0, {"type": "thinking_delta", "thinking": "hmm"}),
            event("content_block_stop", {"type": "content_block_stop", "index": 0}),
            block_start(1, {"type": "text", "text": ""}),
            block_delta(1, {"type": "text_delta", "text": "Hi"}),
            event("something_new", {"type": "something_new"}),
            event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "max_tokens"},
                    "usage": {"output_tokens": 9},
                },
            ),
            event("message_stop", {"type": "message_stop"}),
        ]
    )
    chunks = chunks_of(stream, include_usage=True, piece=3)
    texts = [
        chunk["choices"][0]["delta"].get("content") for chunk in chunks[:-2] if chunk["choices"]
    ]
    assert texts == ["", "Hi", None]
    assert chunks[-3]["choices"][0]["finish_reason"] == "length"
    assert chunks[-2]["usage"]["prompt_tokens"] == 3
    assert chunks[-2]["usage"]["completion_tokens"] == 9
    assert {chunk["model"] for chunk in chunks[:-1]} == {"claude-x"}


def test_an_error_mid_stream_ends_it_without_done() -> None:
    stream = answer(TextBlock(text="Hello"))
    cut = stream[: stream.index(b"event: message_delta")]
    failed = cut + error_event("overloaded_error", "Overloaded") + b"event: ping\ndata: {}\n\n"
    chunks = chunks_of(failed, include_usage=True)
    assert chunks[-1] == {
        "error": {
            "message": "Overloaded",
            "type": "server_error",
            "param": None,
            "code": "overloaded",
        }
    }
    assert {"done": True} not in chunks


@pytest.mark.parametrize("tail", [b"", b'event: message_delta\ndata: {"type": "mess'])
def test_a_stream_cut_short_ends_with_an_error(tail: bytes) -> None:
    stream = answer(TextBlock(text="Hello"))
    cut = stream[: stream.index(b"event: message_delta")] + tail
    chunks = chunks_of(cut, include_usage=False)
    assert chunks[-1]["error"]["type"] == "server_error"
    assert "ended before" in chunks[-1]["error"]["message"]


def test_an_unreadable_event_ends_the_stream() -> None:
    chunks = chunks_of(
        answer(TextBlock(text="Hi"))[:40] + b"\n\ndata: {not json\n\n", include_usage=False
    )
    assert "unreadable" in chunks[-1]["error"]["message"]
