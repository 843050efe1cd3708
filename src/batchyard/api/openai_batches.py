"""HTTP routes of OpenAI's Batch API (``/v1/batches``); errors in OpenAI's envelope."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.api.body import read_capped_body
from batchyard.api.context import context_of
from batchyard.api.responses import json_response
from batchyard.errors import invalid_request

#: OpenAI's bounds for ``limit`` on ``GET /v1/batches``.
_MAX_LIMIT = 100
#: A create body is a few small fields; its requests are in the input file.
_MAX_CREATE_BYTES = 1024 * 1024


async def create_batch(request: Request) -> Response:
    context = context_of(request)
    caller = await context.caller(request)
    body = await read_capped_body(request, _MAX_CREATE_BYTES)
    batch = await context.openai_batches.create(caller, body)
    context.nudge_worker()
    return json_response(request, batch)


async def list_batches(request: Request) -> Response:
    context = context_of(request)
    caller = await context.caller(request)
    query = request.query_params
    page = await context.openai_batches.list(
        caller, after=query.get("after") or None, limit=_limit(query.get("limit"))
    )
    return json_response(request, page)


async def retrieve_batch(request: Request) -> Response:
    context = context_of(request)
    caller = await context.caller(request)
    batch = await context.openai_batches.retrieve(caller, request.path_params["batch_id"])
    return json_response(request, batch)


async def cancel_batch(request: Request) -> Response:
    context = context_of(request)
    caller = await context.caller(request)
    batch = await context.openai_batches.cancel(caller, request.path_params["batch_id"])
    context.nudge_worker()  # an in-process worker re-reads closing batches now
    return json_response(request, batch)


def _limit(raw: str | None) -> int:
    if not raw:
        return 20
    try:
        limit = int(raw)
    except ValueError:
        raise invalid_request("limit: must be an integer") from None
    if not 1 <= limit <= _MAX_LIMIT:
        raise invalid_request(f"limit: must be between 1 and {_MAX_LIMIT}")
    return limit


routes = [
    Route("/v1/batches", create_batch, methods=["POST"]),
    Route("/v1/batches", list_batches, methods=["GET"]),
    Route("/v1/batches/{batch_id}", retrieve_batch, methods=["GET"]),
    Route("/v1/batches/{batch_id}/cancel", cancel_batch, methods=["POST"]),
]
