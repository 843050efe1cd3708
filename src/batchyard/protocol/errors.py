"""Anthropic's error envelope and the HTTP status that goes with each error type.

Every non-2xx response and every ``errored`` batch result uses the same shape:
``{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}``.
The SDKs retry 408, 409, 429 and every 5xx, so a permanent condition must never be
reported with one of those statuses (docs/protocol.md §1.5). The exceptions that carry these
types live in :mod:`batchyard.errors`.
"""

from __future__ import annotations

from typing import Literal

import msgspec

ErrorType = Literal[
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "conflict_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "timeout_error",
    "overloaded_error",
]

STATUS_FOR_ERROR_TYPE: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "conflict_error": 409,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

ERROR_TYPE_FOR_STATUS: dict[int, ErrorType] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

#: Error types worth another attempt: the condition is about load or luck, not the request.
RETRYABLE_ERROR_TYPES: frozenset[str] = frozenset(
    {"overloaded_error", "rate_limit_error", "api_error", "timeout_error"}
)


class ErrorDetail(msgspec.Struct):
    type: str
    message: str


class ErrorResponse(msgspec.Struct):
    error: ErrorDetail
    request_id: str | None
    type: Literal["error"] = "error"
