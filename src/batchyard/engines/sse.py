"""An :class:`~batchyard.engines.base.Engine`'s answer as the Messages SSE sequence, live
when the engine streams its text.

(A relay needs none of this: it passes its upstream's own events on.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from batchyard.engines.base import AnswerSink
from batchyard.errors import ApiError
from batchyard.ids import message_id
from batchyard.protocol.messages import Message, TextBlock, Usage
from batchyard.protocol.ratelimits import RateLimits
from batchyard.protocol.streaming import (
    block_events,
    block_stop,
    error_event,
    message_end,
    message_events,
    message_start,
    text_block_start,
    text_delta,
)


class _Pieces:
    streams = True

    """The sink of a live stream: the prompt's token count, then the text in a queue."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.input_tokens = 0

    def prompt_read(self, input_tokens: int) -> None:
        self.input_tokens = input_tokens

    def text(self, piece: str) -> None:
        self.queue.put_nowait(piece)

    def rate_limits(self, limits: RateLimits) -> None:
        """Not sent: a sync stream carries no rate-limit headers yet (protocol.md §15.6)."""


async def engine_events(
    model: str, answer_with: Callable[[AnswerSink], Awaitable[Message]]
) -> AsyncIterator[bytes]:
    """The events of ``answer_with(sink)``, once its first text or its end is there.

    The answer starts in the background; this waits for its first piece of text or its
    end, so a request that fails at once raises here and still gets a proper error status.
    An engine that does not stream is sent as the whole event sequence once it has answered.
    """
    pieces = _Pieces()
    answer = asyncio.ensure_future(answer_with(pieces))
    first = asyncio.ensure_future(pieces.queue.get())
    either: list[asyncio.Future[Any]] = [answer, first]
    try:
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        answer.cancel()
        first.cancel()
        raise
    if not first.done():
        first.cancel()
        return _complete(answer.result())
    return _live(model, first.result(), pieces, answer)


async def _complete(message: Message) -> AsyncIterator[bytes]:
    for event in message_events(message):
        yield event


async def _live(
    model: str, first: str, sink: _Pieces, answer: asyncio.Future[Message]
) -> AsyncIterator[bytes]:
    """Text deltas as the engine makes them; the rest of the answer when it is done."""
    waiter: asyncio.Future[str] | None = None
    pieces = sink.queue
    try:
        usage = Usage(input_tokens=sink.input_tokens, output_tokens=0)
        yield message_start(message_id(), model, usage)
        yield text_block_start(0)
        sent = first
        yield text_delta(0, first)
        while not answer.done() or not pieces.empty():
            if pieces.empty():
                waiter = asyncio.ensure_future(pieces.get())
                either: list[asyncio.Future[Any]] = [answer, waiter]
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
                if not waiter.done():
                    waiter.cancel()
                    continue
                piece = waiter.result()
            else:
                piece = pieces.get_nowait()
            sent += piece
            yield text_delta(0, piece)
        try:
            message = answer.result()
        except ApiError as exc:
            yield error_event(exc.error_type, exc.message)
            return
        blocks = message.content
        text = blocks[0].text if blocks and isinstance(blocks[0], TextBlock) else ""
        if len(text) > len(sent):
            yield text_delta(0, text[len(sent) :])
        yield block_stop(0)
        for index, block in enumerate(blocks[1:], start=1):
            for event in block_events(index, block):
                yield event
        for event in message_end(message):
            yield event
    finally:
        answer.cancel()  # a client that went away frees its slot in the batch
        if waiter is not None:
            waiter.cancel()
