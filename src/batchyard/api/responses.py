"""JSON responses from msgspec structs, and the error envelope with its ``request-id``."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from batchyard import ids
from batchyard.errors import ApiError
from batchyard.protocol.errors import ErrorDetail, ErrorResponse

_encoder = msgspec.json.Encoder()
REQUEST_ID_HEADER = "request-id"


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


def error_response(request: Request, error: ApiError) -> Response:
    rid = request_id_of(request)
    body = ErrorResponse(
        error=ErrorDetail(type=error.error_type, message=error.message), request_id=rid
    )
    headers = {REQUEST_ID_HEADER: rid, **error.headers}
    return Response(
        _encoder.encode(body),
        status_code=error.status,
        media_type="application/json",
        headers=headers,
    )
