"""Every exception batchyard raises on purpose, in one tree.

```
Exception
 └── BatchyardError
      ├── ApiError ............ has one of the API's error types; the HTTP layer answers it
      │    │                    with the error envelope, a batch records it as ``errored``
      │    ├── ParamsError .... the request's content is wrong (``invalid_request_error``),
      │    │                    found by the validator or by an engine; never retried
      │    └── EngineError .... an engine call failed; retried when its type says so
      │         └── UnreadableAnswer  an upstream answered 2xx with something that is not
      │                               an answer: retried in a batch (up to max_attempts),
      │                               but a sync client is told not to repeat the call
      ├── ConfigError ......... a config file, engine option or command-line value is wrong
      └── StoreError
           ├── SchemaMismatch ........ the database is not at the schema revision this version needs
           ├── IdempotencyKeyTaken ... another create with the same key committed first
           └── QueueFull ............. a create would pass a model's max_queued_per_workspace
```

Catch :class:`ApiError` to report any typed failure, :class:`EngineError` to decide about a
retry, :class:`BatchyardError` for "anything we meant to raise".
"""

from __future__ import annotations

import math

from batchyard.protocol.errors import RETRYABLE_ERROR_TYPES, STATUS_FOR_ERROR_TYPE, ErrorType
from batchyard.protocol.ratelimits import RateLimits


class BatchyardError(Exception):
    """Base of every exception batchyard raises on purpose."""


class ApiError(BatchyardError):
    """A failure with one of the API's error types, its status and optional headers.

    ``retry_after`` (seconds) is a hint for the client or the retry scheduler, e.g. an
    upstream's ``retry-after``; it becomes the ``retry-after`` header of an HTTP answer.
    ``status`` defaults to the type's status; a 405 is an ``invalid_request_error`` too.
    """

    def __init__(
        self,
        error_type: ErrorType,
        message: str,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        retry_after: float | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.error_type: ErrorType = error_type
        self.message = message
        #: The request field at fault, for OpenAI's envelope (``param``); ``None``: the
        #: field the message names first, if any.
        self.param = param
        self.status = status if status is not None else STATUS_FOR_ERROR_TYPE[error_type]
        #: Only a finite, positive hint is kept: an upstream may send anything.
        self.retry_after = (
            retry_after if retry_after is not None and 0 < retry_after < math.inf else None
        )
        self.headers = dict(headers or {})
        if self.retry_after is not None:
            self.headers.setdefault("retry-after", str(max(1, math.ceil(self.retry_after))))


class ParamsError(ApiError):
    """The request's content is wrong: the same request would fail again, so no retry."""

    def __init__(self, message: str) -> None:
        super().__init__("invalid_request_error", message)


class EngineError(ApiError):
    """A failed engine call, typed like the API's errors so it can go straight into a result.

    Retryable by type (overloaded, rate limit, 5xx, timeout) unless the engine knows better
    (``retryable``), e.g. an engine that failed the same way for reasons a retry cannot change.

    ``limits`` is what the engine (or its upstream) said about its rate limits with the
    refusal: the worker paces later calls by it, and the sync API sends it on as
    ``anthropic-ratelimit-*`` headers, as the real API does on a 429.
    """

    def __init__(
        self,
        error_type: ErrorType,
        message: str,
        *,
        retry_after: float | None = None,
        retryable: bool | None = None,
        limits: RateLimits | None = None,
    ) -> None:
        if retry_after is None and limits is not None:
            retry_after = limits.retry_after
        super().__init__(error_type, message, retry_after=retry_after)
        self.retryable = retryable if retryable is not None else error_type in RETRYABLE_ERROR_TYPES
        self.limits = limits
        if limits is not None:
            for name, value in limits.headers().items():
                self.headers.setdefault(name, value)


class UnreadableAnswer(EngineError):
    """An upstream answered 2xx with a body that is not a JSON answer (cut off, not JSON).

    Likely a broken connection or proxy, so a batch retries it (bounded by ``max_attempts``).
    The upstream may have billed the call, though, so the sync path's answer carries
    ``x-should-retry: false``: the official SDKs otherwise retry a 5xx on their own, and one
    client call would cost several upstream calls.
    """

    def __init__(self, message: str) -> None:
        super().__init__("api_error", message, retryable=True)
        self.headers["x-should-retry"] = "false"


class ConfigError(BatchyardError):
    """A config file, engine option or command-line value is wrong; the message says which."""


class StoreError(BatchyardError):
    """The store refused an operation for a reason the caller can act on."""


class SchemaMismatch(StoreError):
    """The database is not at the schema revision this version needs (made by an older
    batchyard: ``batchyard db upgrade`` brings it forward)."""


class IdempotencyKeyTaken(StoreError):
    """Another create with the same ``Idempotency-Key`` committed first."""


class QueueFull(StoreError):
    """A create would take a workspace past a model's ``max_queued_per_workspace``."""

    def __init__(self, model: str, queued: int, adding: int, limit: int) -> None:
        super().__init__(
            f"requests: this workspace has {queued} requests of model {model!r} queued and "
            f"this batch adds {adding}: more than the {limit} a workspace may have queued "
            "for it (max_queued_per_workspace); retry once some have run"
        )


def invalid_request(message: str) -> ApiError:
    return ApiError("invalid_request_error", message)


def not_found(message: str) -> ApiError:
    return ApiError("not_found_error", message)


__all__ = [
    "ApiError",
    "BatchyardError",
    "ConfigError",
    "EngineError",
    "IdempotencyKeyTaken",
    "ParamsError",
    "QueueFull",
    "SchemaMismatch",
    "StoreError",
    "UnreadableAnswer",
    "invalid_request",
    "not_found",
]
