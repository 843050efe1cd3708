"""``GET /v1/models`` and ``GET /v1/models/{model_id}``: every name this server answers to."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.api.batches import parse_limit
from batchyard.api.context import ApiContext, context_of
from batchyard.api.responses import json_response
from batchyard.errors import ApiError, invalid_request
from batchyard.protocol.models import ModelInfo, ModelPage


async def list_models(request: Request) -> Response:
    """Every servable name (aliases included), with ``limit``/``after_id``/``before_id``."""
    context = context_of(request)
    await context.caller(request)
    names = context.models.names
    query = request.query_params
    limit = parse_limit(query.get("limit"))
    after, before = query.get("after_id"), query.get("before_id")
    if after and before:
        raise invalid_request("after_id and before_id cannot be used together")
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
    return served.model_info(name)


routes = [
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model_id}", retrieve_model, methods=["GET"]),
]
