"""OpenAI's error envelope, for the routes of the OpenAI surface (files, batches, chat).

``{"error": {"message": …, "type": …, "param": …, "code": …}}`` with the same HTTP status as
the Anthropic surface gives the same failure (the OpenAI SDKs choose their exception class
and their retries by status alone). Types and codes are OpenAI's for that status: a 401 is
``invalid_request_error`` / ``invalid_api_key``, a 429 ``requests`` / ``rate_limit_exceeded``,
a 5xx ``server_error``, an unknown model's 404 ``model_not_found``; an overloaded engine is
OpenAI's 503 rather than Anthropic's 529.
"""

from __future__ import annotations

import re

import msgspec

#: ``(type, code)`` OpenAI uses for each of our error types.
_OPENAI_TYPE: dict[str, tuple[str, str | None]] = {
    "invalid_request_error": ("invalid_request_error", None),
    "authentication_error": ("invalid_request_error", "invalid_api_key"),
    "billing_error": ("insufficient_quota", "insufficient_quota"),
    "permission_error": ("invalid_request_error", "permission_denied"),
    "not_found_error": ("invalid_request_error", None),
    "conflict_error": ("invalid_request_error", "conflict"),
    "request_too_large": ("invalid_request_error", "request_too_large"),
    "rate_limit_error": ("requests", "rate_limit_exceeded"),
    "api_error": ("server_error", None),
    "timeout_error": ("server_error", "timeout"),
    "overloaded_error": ("server_error", "overloaded"),
}

#: A message that starts by naming its field (``max_tokens: …``, ``messages.0.content: …``),
#: as every validation message here does.
_LEADING_FIELD = re.compile(r"^([A-Za-z_][\w.\[\]-]*): ")


class OpenAIErrorDetail(msgspec.Struct):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIErrorResponse(msgspec.Struct):
    error: OpenAIErrorDetail


#: Statuses of ours that OpenAI's clients do not know, as the one OpenAI sends for the case
#: (its SDKs, proxies and retry policies key on 429 and 500-504; 529 is Anthropic's own).
_OPENAI_STATUS = {529: 503}


def openai_status(status: int) -> int:
    """The HTTP status an OpenAI client gets for one of ours."""
    return _OPENAI_STATUS.get(status, status)


def openai_error(
    error_type: str, message: str, *, param: str | None = None, code: str | None = None
) -> OpenAIErrorResponse:
    """The envelope for one of our error types; ``param`` defaults to the field the message
    names first, ``code`` to OpenAI's code for the type."""
    wire_type, default_code = _OPENAI_TYPE.get(error_type, ("server_error", None))
    param = param if param is not None else leading_field(message)
    if error_type == "not_found_error" and param == "model":
        default_code = "model_not_found"  # clients branch on it (to fall back to a model)
    return OpenAIErrorResponse(
        OpenAIErrorDetail(message=message, type=wire_type, param=param, code=code or default_code)
    )


def leading_field(message: str) -> str | None:
    """The field a message names first (``max_tokens: …`` → ``max_tokens``), if any."""
    named = _LEADING_FIELD.match(message)
    return named.group(1) if named else None
