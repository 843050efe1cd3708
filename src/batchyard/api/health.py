"""``GET /health``: liveness plus whether each model's engine has finished loading."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchyard.api.context import context_of
from batchyard.api.responses import json_response


async def health(request: Request) -> Response:
    context = context_of(request)
    models = {served.config.name: served.state for served in context.models.models}
    return json_response(request, {"status": "ok", "models": models})


routes = [Route("/health", health, methods=["GET"])]
