"""The Starlette application: routes, the error envelope for every failure, ``request-id``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from batchyard.api import (
    batches,
    chat_completions,
    files,
    health,
    messages,
    models,
    openai_batches,
    token_counts,
)
from batchyard.api.responses import (
    OPENAI_REQUEST_ID_HEADER,
    REQUEST_ID_HEADER,
    error_response,
    request_id_of,
)
from batchyard.errors import ApiError
from batchyard.protocol.errors import ERROR_TYPE_FOR_STATUS

logger = logging.getLogger("batchyard.api")


class RequestIdMiddleware:
    """Give every response a ``request-id`` header (the SDKs surface it to users), and the same
    id as ``x-request-id``, where OpenAI's SDKs look for it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(Request(scope))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if REQUEST_ID_HEADER not in headers:
                    headers[REQUEST_ID_HEADER] = request_id
                if OPENAI_REQUEST_ID_HEADER not in headers:
                    headers[OPENAI_REQUEST_ID_HEADER] = headers[REQUEST_ID_HEADER]
            await send(message)

        await self.app(scope, receive, send_with_id)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(request, exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error_type = ERROR_TYPE_FOR_STATUS.get(exc.status_code, "invalid_request_error")
    headers: dict[str, str] = {}
    if exc.status_code == 404:
        message = f"Not found: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        allowed = _allowed_methods(request)
        headers["allow"] = ", ".join(allowed)
        message = f"Method {request.method} not allowed on {request.url.path}; use " + (
            " or ".join(allowed)
        )
    else:
        message = str(exc.detail)
    return error_response(
        request, ApiError(error_type, message, status=exc.status_code, headers=headers)
    )


def _allowed_methods(request: Request) -> list[str]:
    """Every method any route serves at this path (Starlette reports only the first route's)."""
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.path_regex.match(request.url.path):
            methods |= route.methods or set()
    return sorted(methods)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(request, ApiError("api_error", "Internal server error"))


def create_app(lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]]) -> Starlette:
    """The ASGI app; ``lifespan`` must set ``app.state.context`` (an :class:`ApiContext`)."""
    app = Starlette(
        routes=[
            *batches.routes,
            *files.routes,
            *openai_batches.routes,
            *messages.routes,
            *chat_completions.routes,
            *token_counts.routes,
            *models.routes,
            *health.routes,
        ],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _unexpected_error,
        },
        lifespan=lifespan,
    )
    app.add_middleware(RequestIdMiddleware)
    return app
