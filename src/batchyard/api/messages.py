"""The sync Messages API: ``POST /v1/messages``, plain and SSE.

Served by the same engines as batches, so concurrent sync calls to the local model are
batched together with whatever else it is running. The body is read here only as far as
routing needs; the model's :class:`~batchyard.engines.registry.ServedModel` validates it
(or, for a relay, forwards it as it is, with the client's ``anthropic-*`` headers).
"""

from __future__ import annotations

from functools import partial

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from batchyard.api.body import read_capped_body
from batchyard.api.context import context_of
from batchyard.api.responses import REQUEST_ID_HEADER, request_id_of
from batchyard.protocol.messages import decode_params
from batchyard.protocol.routing import forwarded_headers, names_a_beta

#: The Messages API's own body limit (batches allow 256 MB).
MAX_MESSAGE_BODY_BYTES = 32 * 1024 * 1024


def asks_for_beta(request: Request) -> bool:
    """Whether a body is checked against the SDK's beta types: the request names a beta in
    ``anthropic-beta`` (as the beta SDK methods do, which also add ``?beta=true``)."""
    return names_a_beta(request.headers.items()) or request.query_params.get("beta") == "true"


async def create_message(request: Request) -> Response:
    context = context_of(request)
    await context.caller(request)
    body = await read_capped_body(request, MAX_MESSAGE_BODY_BYTES)
    beta = asks_for_beta(request)
    served, route = context.models.route(body, partial(decode_params, in_batch=False, beta=beta))
    headers = forwarded_headers(request.headers.items())
    request_id = {REQUEST_ID_HEADER: request_id_of(request)}
    if route.stream:
        events = await served.stream_message(route, body, headers, beta=beta)
        return StreamingResponse(
            events,
            media_type="text/event-stream",
            headers={**request_id, "cache-control": "no-cache"},
        )
    answer = await served.create_message(route, body, headers, in_batch=False, beta=beta)
    limits = answer.limits.headers() if answer.limits is not None else {}
    return Response(answer.message, media_type="application/json", headers={**request_id, **limits})


routes = [Route("/v1/messages", create_message, methods=["POST"])]
