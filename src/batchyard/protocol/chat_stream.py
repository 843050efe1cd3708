"""A Messages SSE stream, as any model here streams it (an engine's events or a relay's
upstream's), rewritten as a Chat Completions stream: ``data: {chat.completion.chunk}``
events ending with ``data: [DONE]``.

Event by event, as they arrive: ``message_start`` → the first chunk (``role: "assistant"``);
a ``text_delta`` → a content chunk; a ``tool_use`` block's start → a tool call's first
piece (its ``index`` among the answer's tool calls, ``id``, ``type``, the function's name)
and each ``input_json_delta`` → a piece of its ``arguments``; ``message_delta`` → the chunk
with the ``finish_reason``; ``message_stop`` → with ``stream_options.include_usage`` a last
chunk with no choices and the ``usage`` (every other chunk then says ``usage: null``, as
OpenAI's do), then ``[DONE]``. Thinking, server-tool blocks and ``ping`` have no chunk.

An ``error`` event (the answer failed after the stream began) becomes
``data: {"error": {...}}`` in OpenAI's envelope, the form OpenAI-compatible servers use and
the official SDKs raise as an ``APIError``; nothing follows it, not even ``[DONE]``, so no
client takes the cut answer for a whole one. A stream that ends before ``message_stop``
gets the same error event.
"""

from __future__ import annotations

import msgspec

from batchyard.protocol import chat_completions as chat
from batchyard.protocol.chat_mapping import UsageCounts, finish_reason
from batchyard.protocol.openai_errors import openai_error
from batchyard.protocol.streaming import EVENT_END, LINE_END

DONE = b"data: [DONE]\n\n"


class _StartedMessage(msgspec.Struct):
    model: str = ""
    usage: UsageCounts | None = None


class _Block(msgspec.Struct):
    type: str = ""
    id: str = ""
    name: str = ""
    text: str = ""


class _Delta(msgspec.Struct):
    """A block's delta or the message's (``message_delta``): the fields of both, leniently."""

    type: str = ""
    text: str = ""
    partial_json: str = ""
    stop_reason: str | None = None


class _Error(msgspec.Struct):
    type: str = "api_error"
    message: str = ""


class _Event(msgspec.Struct):
    """Any Messages stream event, as far as a chat stream shows it."""

    type: str = ""
    message: _StartedMessage | None = None
    index: int = 0
    content_block: _Block | None = None
    delta: _Delta | None = None
    usage: UsageCounts | None = None
    error: _Error | None = None


_event_decoder = msgspec.json.Decoder(_Event)
_encoder = msgspec.json.Encoder()


class ChatChunks:
    """Turns the bytes of a Messages stream into those of a chat completion stream.

    :meth:`feed` takes the stream's bytes as they come (cut anywhere) and returns what can
    be sent now; :meth:`close` what ends the stream once its input has ended.
    """

    def __init__(self, *, completion_id: str, created: int, include_usage: bool) -> None:
        self._id = completion_id
        self._created = created
        self._include_usage = include_usage
        self._model = ""
        self._pending = b""
        self._usage = UsageCounts()
        #: The answer's tool calls so far: a ``tool_use`` block's index → its call's index.
        self._calls: dict[int, int] = {}
        self._ended = False

    def feed(self, data: bytes) -> bytes:
        """The chunks for every event ``data`` completes."""
        self._pending += data
        out: list[bytes] = []
        while not self._ended and (match := EVENT_END.search(self._pending)):
            event, self._pending = self._pending[: match.start()], self._pending[match.end() :]
            out += self._chunks(event)
        return b"".join(out)

    def close(self) -> bytes:
        """Nothing once the answer is complete (or failed); else the error that says it was
        cut short."""
        if self._ended:
            return b""
        self._ended = True
        return _error("api_error", "the answer's stream ended before the answer did")

    def _chunks(self, event: bytes) -> list[bytes]:
        data = b"\n".join(
            line[5:].removeprefix(b" ")
            for line in LINE_END.split(event)
            if line.startswith(b"data:")
        )
        if not data:
            return []
        try:
            parsed = _event_decoder.decode(data)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            self._ended = True
            return [_error("api_error", "the answer's stream sent an unreadable event")]
        return self._translate(parsed)

    def _translate(self, event: _Event) -> list[bytes]:
        kind, block, delta = event.type, event.content_block, event.delta
        if kind == "message_start" and event.message is not None:
            self._model = event.message.model
            self._usage = self._usage.updated(event.message.usage)
            return [self._chunk(chat.Delta(role="assistant", content=""))]
        if kind == "content_block_start" and block is not None:
            if block.type == "text" and block.text:
                return [self._chunk(chat.Delta(content=block.text))]
            if block.type == "tool_use":
                call = self._calls.setdefault(event.index, len(self._calls))
                function = chat.DeltaFunction(name=block.name)
                piece = chat.DeltaToolCall(
                    index=call, id=block.id, type="function", function=function
                )
                return [self._chunk(chat.Delta(tool_calls=[piece]))]
        elif kind == "content_block_delta" and delta is not None:
            if delta.type == "text_delta" and delta.text:
                return [self._chunk(chat.Delta(content=delta.text))]
            started = self._calls.get(event.index)
            if delta.type == "input_json_delta" and delta.partial_json and started is not None:
                function = chat.DeltaFunction(arguments=delta.partial_json)
                piece = chat.DeltaToolCall(index=started, function=function)
                return [self._chunk(chat.Delta(tool_calls=[piece]))]
        elif kind == "message_delta":
            self._usage = self._usage.updated(event.usage)
            stop_reason = delta.stop_reason if delta is not None else None
            return [self._chunk(chat.Delta(), finish_reason(stop_reason))]
        elif kind == "message_stop":
            self._ended = True
            if not self._include_usage:
                return [DONE]
            last = self._base([])
            last.usage = self._usage.chat()
            return [_data(last), DONE]
        elif kind == "error":
            self._ended = True
            error = event.error or _Error()
            return [_error(error.type, error.message)]
        return []

    def _chunk(self, delta: chat.Delta, finish: chat.FinishReason | None = None) -> bytes:
        return _data(self._base([chat.ChunkChoice(delta=delta, finish_reason=finish)]))

    def _base(self, choices: list[chat.ChunkChoice]) -> chat.ChatCompletionChunk:
        chunk = chat.ChatCompletionChunk(
            id=self._id, created=self._created, model=self._model, choices=choices
        )
        if self._include_usage:
            chunk.usage = None
        return chunk


def _data(payload: object) -> bytes:
    return b"data: " + _encoder.encode(payload) + b"\n\n"


def _error(error_type: str, message: str) -> bytes:
    return _data(openai_error(error_type, message))
