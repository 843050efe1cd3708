"""``POST /v1/messages/count_tokens``: the ``input_tokens`` a Messages request would use.

Authenticated and capped like ``POST /v1/messages``, routed the same way, then answered by
the model's engine (validated as a create body without its generation settings), so the
count is the one that engine reports as ``usage.input_tokens`` for the same prompt. A relay
forwards the body and returns its upstream's answer.
"""

from __future__ import annotations

from functools import partial

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.api.body import read_capped_body
from batchyard.api.context import context_of
from batchyard.api.messages import MAX_MESSAGE_BODY_BYTES, asks_for_beta
from batchyard.api.responses import REQUEST_ID_HEADER, request_id_of
from batchyard.protocol.messages import decode_count_tokens_params
from batchyard.protocol.routing import forwarded_headers


async def count_tokens(request: Request) -> Response:
    context = context_of(request)
    await context.caller(request)
    body = await read_capped_body(request, MAX_MESSAGE_BODY_BYTES)
    beta = asks_for_beta(request)
    served, route = context.models.route(body, partial(decode_count_tokens_params, beta=beta))
    headers = forwarded_headers(request.headers.items())
    counted = await served.count_tokens(route, body, headers, beta=beta)
    return Response(
        counted,
        media_type="application/json",
        headers={REQUEST_ID_HEADER: request_id_of(request)},
    )


routes = [Route("/v1/messages/count_tokens", count_tokens, methods=["POST"])]
