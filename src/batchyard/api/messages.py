"""The sync Messages API (``POST /v1/messages``, plain and SSE) and ``GET /v1/models``.

Served by the same engines as batches, so concurrent sync calls to the local model are
batched together with whatever else it is running.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from batchyard.api.batches import parse_limit
from batchyard.api.body import read_capped_body
from batchyard.api.context import ApiContext, context_of
from batchyard.api.responses import REQUEST_ID_HEADER, json_response, request_id_of
from batchyard.engines.base import EngineError
from batchyard.protocol.errors import ApiError, invalid_request
from batchyard.protocol.messages import Message, ParamsError, decode_params
from batchyard.protocol.models import ModelInfo, ModelPage
from batchyard.protocol.streaming import message_events

#: The Messages API's own body limit (batches allow 256 MB).
MAX_MESSAGE_BODY_BYTES = 32 * 1024 * 1024


async def create_message(request: Request) -> Response:
    context = context_of(request)
    await context.caller(request)
    body = await read_capped_body(request, MAX_MESSAGE_BODY_BYTES)
    try:
        params = decode_params(body, in_batch=False)
    except ParamsError as exc:
        raise ApiError(exc.error_type, exc.message) from None
    served = context.models.get(params.model)
    if served is None:
        raise ApiError("not_found_error", f"model: {params.model}")
    try:
        message = await served.create_message(params)
    except ParamsError as exc:
        raise ApiError(exc.error_type, exc.message) from None
    except EngineError as exc:
        headers = {"retry-after": str(int(exc.retry_after))} if exc.retry_after else None
        raise ApiError(exc.error_type, exc.message, headers=headers) from None
    if params.stream:
        return StreamingResponse(
            _sse(message),
            media_type="text/event-stream",
            headers={REQUEST_ID_HEADER: request_id_of(request), "cache-control": "no-cache"},
        )
    return json_response(request, message)


async def _sse(message: Message) -> AsyncIterator[bytes]:
    for event in message_events(message):
        yield event


async def list_models(request: Request) -> Response:
    """Every servable name (aliases included), with ``limit``/``after_id``/``before_id``."""
    context = context_of(request)
    await context.caller(request)
    names = context.models.names
    query = request.query_params
    limit = parse_limit(query.get("limit"))
    after, before = query.get("after_id"), query.get("before_id")
    for cursor in (after, before):
        if cursor and cursor not in names:
            raise invalid_request(f"no model with id {cursor!r}")
    if after:
        window = names[names.index(after) + 1 :]
        page, has_more = window[:limit], len(window) > limit
    elif before:
        window = names[: names.index(before)]
        page, has_more = window[-limit:], len(window) > limit
    else:
        page, has_more = names[:limit], len(names) > limit
    data = [_model_info(context, name) for name in page]
    return json_response(
        request,
        ModelPage(
            data=data,
            has_more=has_more,
            first_id=data[0].id if data else None,
            last_id=data[-1].id if data else None,
        ),
    )


async def retrieve_model(request: Request) -> Response:
    context = context_of(request)
    await context.caller(request)
    name = request.path_params["model_id"]
    if context.models.get(name) is None:
        raise ApiError("not_found_error", f"model: {name}")
    return json_response(request, _model_info(context, name))


def _model_info(context: ApiContext, name: str) -> ModelInfo:
    served = context.models.get(name)
    assert served is not None
    return ModelInfo(
        id=name,
        display_name=name,
        created_at="1970-01-01T00:00:00Z",
        max_tokens=served.config.max_output_tokens,
    )


routes = [
    Route("/v1/messages", create_message, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model_id}", retrieve_model, methods=["GET"]),
]
