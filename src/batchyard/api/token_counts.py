"""``POST /v1/messages/count_tokens``: the ``input_tokens`` a Messages request would use.

Authenticated, capped and validated like ``POST /v1/messages`` (the body is a create body
without its generation settings), then answered by the model's engine, so the count is the
one that engine reports as ``usage.input_tokens`` for the same prompt.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.api.body import read_capped_body
from batchyard.api.context import context_of
from batchyard.api.messages import MAX_MESSAGE_BODY_BYTES, asks_for_beta
from batchyard.api.responses import json_response
from batchyard.errors import ApiError
from batchyard.protocol.messages import MessageTokensCount, decode_count_tokens_params


async def count_tokens(request: Request) -> Response:
    context = context_of(request)
    await context.caller(request)
    body = await read_capped_body(request, MAX_MESSAGE_BODY_BYTES)
    params = decode_count_tokens_params(body, beta=asks_for_beta(request))
    served = context.models.get(params.model)
    if served is None:
        raise ApiError("not_found_error", f"model: {params.model}")
    input_tokens = await served.count_tokens(params)
    return json_response(request, MessageTokensCount(input_tokens=input_tokens))


routes = [Route("/v1/messages/count_tokens", count_tokens, methods=["POST"])]
