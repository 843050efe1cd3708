"""HTTP routes of the Message Batches API (docs/protocol.md §2). ``?beta=true`` is ignored."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from batchyard.api.body import read_capped_body
from batchyard.api.context import context_of
from batchyard.api.responses import REQUEST_ID_HEADER, json_response, request_id_of
from batchyard.errors import invalid_request
from batchyard.protocol.routing import forwarded_headers
from batchyard.service.batches import BatchService, Caller

Endpoint = Callable[[Request], Awaitable[Response]]

_MAX_LIST_LIMIT = 1000


async def create_batch(request: Request) -> Response:
    context = context_of(request)
    caller = await context.caller(request)
    body = await read_capped_body(request, context.settings.max_body_bytes)
    key = request.headers.get("idempotency-key") or None
    if key is not None and len(key) > 255:
        raise invalid_request("Idempotency-Key: at most 255 characters")
    headers = forwarded_headers(request.headers.items())
    batch = await context.batches.create(caller, body, idempotency_key=key, headers=headers)
    context.nudge_worker()
    return json_response(request, batch)


async def list_batches(request: Request) -> Response:
    context = context_of(request)
    caller = await context.caller(request)
    query = request.query_params
    page = await context.batches.list(
        caller,
        limit=parse_limit(query.get("limit")),
        after_id=query.get("after_id") or None,
        before_id=query.get("before_id") or None,
    )
    return json_response(request, page)


def _on_batch(action: Callable[[BatchService, Caller, str], Awaitable[object]]) -> Endpoint:
    """An endpoint that applies ``action`` to the batch named in the path and returns JSON."""

    async def endpoint(request: Request) -> Response:
        context = context_of(request)
        caller = await context.caller(request)
        result = await action(context.batches, caller, request.path_params["batch_id"])
        return json_response(request, result)

    return endpoint


retrieve_batch = _on_batch(BatchService.retrieve)
_cancel = _on_batch(BatchService.cancel)


async def cancel_batch(request: Request) -> Response:
    response = await _cancel(request)
    context_of(request).nudge_worker()  # an in-process worker re-reads closing batches now
    return response


delete_batch = _on_batch(BatchService.delete)


async def batch_results(request: Request) -> Response:
    context = context_of(request)
    caller = await context.caller(request)
    batch_id = request.path_params["batch_id"]
    partial = request.query_params.get("partial", "").lower() in ("true", "1")
    chunks = await context.batches.results(caller, batch_id, partial=partial)
    return StreamingResponse(
        chunks,
        media_type="application/x-jsonl",
        headers={
            REQUEST_ID_HEADER: request_id_of(request),
            "content-disposition": f"attachment; filename*=utf-8''{batch_id}_results.jsonl",
        },
    )


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return 20
    try:
        limit = int(raw)
    except ValueError:
        raise invalid_request("limit: Input should be a valid integer") from None
    if not 1 <= limit <= _MAX_LIST_LIMIT:
        raise invalid_request(
            f"limit: Input should be greater than or equal to 1 and less than or equal to "
            f"{_MAX_LIST_LIMIT}"
        )
    return limit


routes = [
    Route("/v1/messages/batches", create_batch, methods=["POST"]),
    Route("/v1/messages/batches", list_batches, methods=["GET"]),
    Route("/v1/messages/batches/{batch_id}", retrieve_batch, methods=["GET"]),
    Route("/v1/messages/batches/{batch_id}", delete_batch, methods=["DELETE"]),
    Route("/v1/messages/batches/{batch_id}/cancel", cancel_batch, methods=["POST"]),
    Route("/v1/messages/batches/{batch_id}/results", batch_results, methods=["GET"]),
]
