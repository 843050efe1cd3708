"""The sync Messages API: ``POST /v1/messages``, plain and SSE.

Served by the same engines as batches, so concurrent sync calls to the local model are
batched together with whatever else it is running.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from batchyard.api.body import read_capped_body
from batchyard.api.context import context_of
from batchyard.api.responses import REQUEST_ID_HEADER, json_response, request_id_of
from batchyard.engines.registry import ServedModel
from batchyard.errors import ApiError
from batchyard.ids import message_id
from batchyard.protocol.messages import (
    Message,
    MessageCreateParams,
    TextBlock,
    Usage,
    decode_params,
)
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

#: The Messages API's own body limit (batches allow 256 MB).
MAX_MESSAGE_BODY_BYTES = 32 * 1024 * 1024


def asks_for_beta(request: Request) -> bool:
    """Whether a body is checked against the SDK's beta types: the request names a beta in
    ``anthropic-beta`` (as the beta SDK methods do, which also add ``?beta=true``)."""
    return bool(request.headers.get("anthropic-beta")) or request.query_params.get("beta") == "true"


async def create_message(request: Request) -> Response:
    context = context_of(request)
    await context.caller(request)
    body = await read_capped_body(request, MAX_MESSAGE_BODY_BYTES)
    params = decode_params(body, in_batch=False, beta=asks_for_beta(request))
    served = context.models.get(params.model)
    if served is None:
        raise ApiError("not_found_error", f"model: {params.model}")
    if params.stream:
        return await _stream(request, served, params)
    message = await served.create_message(params)
    return json_response(request, message)


async def _stream(request: Request, served: ServedModel, params: MessageCreateParams) -> Response:
    """SSE for ``stream: true``, live when the engine streams its text.

    The answer starts in the background; the response waits for its first piece of text or
    its end, so a request that fails at once still gets a proper error status. An engine
    that does not stream is sent as the whole event sequence once it has answered.
    """
    pieces: asyncio.Queue[str] = asyncio.Queue()
    answer = asyncio.ensure_future(served.create_message(params, pieces.put_nowait))
    first = asyncio.ensure_future(pieces.get())
    either: list[asyncio.Future[Any]] = [answer, first]
    await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    if not first.done():
        first.cancel()
        events = _complete(answer.result())
    else:
        events = _live(params.model, first.result(), pieces, answer)
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={REQUEST_ID_HEADER: request_id_of(request), "cache-control": "no-cache"},
    )


async def _complete(message: Message) -> AsyncIterator[bytes]:
    for event in message_events(message):
        yield event


async def _live(
    model: str, first: str, pieces: asyncio.Queue[str], answer: asyncio.Future[Message]
) -> AsyncIterator[bytes]:
    """Text deltas as the engine makes them; the rest of the answer when it is done."""
    waiter: asyncio.Future[str] | None = None
    try:
        yield message_start(message_id(), model, Usage(input_tokens=0, output_tokens=0))
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


routes = [Route("/v1/messages", create_message, methods=["POST"])]
