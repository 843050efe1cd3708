"""JSON responses from msgspec structs, and the error envelope with its ``request-id``."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from batchyard import ids
from batchyard.errors import ApiError
from batchyard.protocol.errors import ErrorDetail, ErrorResponse
from batchyard.protocol.openai_errors import openai_error, openai_status

_encoder = msgspec.json.Encoder()
REQUEST_ID_HEADER = "request-id"
#: The same id under the name OpenAI sends and its SDKs read (``_request_id``).
OPENAI_REQUEST_ID_HEADER = "x-request-id"

#: Routes only the OpenAI surface serves: their errors always use OpenAI's envelope.
_OPENAI_ROUTES = ("/v1/files", "/v1/batches", "/v1/chat/")
#: Routes only the Anthropic surface serves.
_ANTHROPIC_ROUTES = ("/v1/messages",)


def request_id_of(request: Request) -> str:
    """The id of this HTTP request, made once and echoed in the header and error bodies."""
    state = request.scope.setdefault("state", {})
    if "request_id" not in state:
        state["request_id"] = ids.request_id()
    value: str = state["request_id"]
    return value


def json_response(request: Request, payload: Any, status: int = 200) -> Response:
    return Response(
        _encoder.encode(payload),
        status_code=status,
        media_type="application/json",
        headers={REQUEST_ID_HEADER: request_id_of(request)},
    )


def speaks_openai(request: Request) -> bool:
    """Whether the caller is an OpenAI client: on a route of the OpenAI surface, or on a
    shared one (``/v1/models``, an unknown path) without the ``anthropic-version`` or
    ``x-api-key`` header every Anthropic SDK sends."""
    path = request.url.path
    if path.startswith(_OPENAI_ROUTES):
        return True
    if path.startswith(_ANTHROPIC_ROUTES):
        return False
    headers = request.headers
    return "anthropic-version" not in headers and "x-api-key" not in headers


def error_response(request: Request, error: ApiError) -> Response:
    """The error in the caller's API's envelope (Anthropic's, or OpenAI's for an OpenAI
    client), with the same status either way but for the ones OpenAI's clients do not know
    (:func:`~batchyard.protocol.openai_errors.openai_status`)."""
    rid = request_id_of(request)
    body: object
    status = error.status
    if speaks_openai(request):
        body = openai_error(error.error_type, error.message, param=error.param)
        status = openai_status(status)
    else:
        body = ErrorResponse(
            error=ErrorDetail(type=error.error_type, message=error.message), request_id=rid
        )
    headers = {REQUEST_ID_HEADER: rid, **error.headers}
    return Response(
        _encoder.encode(body),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )
