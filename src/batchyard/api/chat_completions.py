"""OpenAI's sync Chat Completions API: ``POST /v1/chat/completions``, plain and SSE.

A chat request is translated once into Messages params
(:mod:`batchyard.protocol.chat_translation`), then takes the path of ``POST /v1/messages``:
routed by model, forwarded by a relay or run by an engine, on the same engines (and in the
same local batches) as everything else. The answer is translated back, a whole
``chat.completion`` or, for ``stream: true``, chunks as the engine streams
(:mod:`batchyard.protocol.chat_stream`). Errors before the answer starts have their status
and OpenAI's envelope (this route is on the OpenAI surface: ``api/responses.py``), and name
the chat request's field even when found after the translation
(:class:`~batchyard.protocol.chat_paths.ChatPaths`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator
from functools import partial

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from batchyard import ids
from batchyard.api.body import read_capped_body
from batchyard.api.context import ApiContext, context_of
from batchyard.api.messages import MAX_MESSAGE_BODY_BYTES
from batchyard.api.responses import REQUEST_ID_HEADER, request_id_of
from batchyard.errors import ApiError
from batchyard.protocol.chat_completions import ChatCompletionRequest
from batchyard.protocol.chat_stream import ChatChunks
from batchyard.protocol.chat_translation import (
    chat_completion,
    decode_request,
    translate,
)
from batchyard.protocol.messages import decode_params
from batchyard.timeutil import now_us


async def create_chat_completion(request: Request) -> Response:
    context = context_of(request)
    await context.caller(request)
    chat_body = await read_capped_body(request, MAX_MESSAGE_BODY_BYTES)
    chat = decode_request(chat_body)
    translation = translate(
        chat, in_batch=False, default_max_tokens=context.models.default_max_tokens
    )
    try:
        return await _answer(context, request, chat, translation.params)
    except ApiError as exc:
        raise translation.paths.chat_error(exc) from None


async def _answer(
    context: ApiContext, request: Request, chat: ChatCompletionRequest, body: bytes
) -> Response:
    """The answer to the Messages request ``body`` that ``chat`` was translated into."""
    served, route = context.models.route(body, partial(decode_params, in_batch=False))
    completion_id, created = ids.chat_completion_id(), int(time.time())
    request_id = {REQUEST_ID_HEADER: request_id_of(request)}
    if route.stream:
        events = await served.stream_message(route, body)
        include_usage = bool(chat.stream_options and chat.stream_options.include_usage)
        chunks = ChatChunks(
            completion_id=completion_id, created=created, include_usage=include_usage
        )
        return StreamingResponse(
            _rewritten(events, chunks),
            media_type="text/event-stream",
            headers={**request_id, "cache-control": "no-cache"},
        )
    answer = await served.create_message(route, body, in_batch=False)
    limits = answer.limits.openai_headers(now_us()) if answer.limits is not None else {}
    return Response(
        chat_completion(answer.message, completion_id=completion_id, created=created),
        media_type="application/json",
        headers={**request_id, **limits},
    )


async def _rewritten(events: AsyncIterator[bytes], chunks: ChatChunks) -> AsyncIterator[bytes]:
    """The Messages events as chat chunks, each sent as soon as its event is complete. The
    events are closed either way: a client that went away frees the engine's slot (or the
    relay's upstream connection) at once."""
    try:
        async for event in events:
            if out := chunks.feed(event):
                yield out
        if out := chunks.close():
            yield out
    finally:
        if isinstance(events, AsyncGenerator):
            await events.aclose()


routes = [Route("/v1/chat/completions", create_chat_completion, methods=["POST"])]
