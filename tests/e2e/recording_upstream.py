"""A recording stand-in for Anthropic's API, on a loopback port, for relay tests.

No real Anthropic upstream is reachable from the tests, and what must be checked is exactly
what a relay puts on the wire: this server records every request's path, headers and body
bytes, and answers with canned Anthropic-shaped answers chosen by the ``model`` it is sent:

* ``up-tools``: a message with ``server_tool_use`` / ``web_search_tool_result`` blocks, a
  block type no SDK knows yet, ``container``, ``usage.server_tool_use``, ``null`` usage
  counts and a top-level field from the future; with ``stream: true``, an SSE stream that
  sends its first events, then waits for :attr:`RecordingUpstream.release` before the rest;
* ``up-garbage``: 200 with a body that is not JSON; ``up-truncated``: 200 with JSON cut off;
* ``up-overloaded``: 529 ``overloaded_error``;
* ``up-error200``: 200 with an ``error`` object (some servers answer so);
* ``up-unauthorized``: 401 ``authentication_error`` (the relay's key is wrong);
* ``up-trickle``: an SSE stream whose events come 0.4 s apart, for 2 s in all.

``POST /v1/messages/count_tokens`` answers ``{"input_tokens": 42}`` and
``GET /v1/models/up-tools`` a model with limits and capabilities (other models: 404).
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from harness import free_port
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

TOOLS_ANSWER: dict[str, Any] = {
    "id": "msg_up_01",
    "type": "message",
    "role": "assistant",
    "model": "up-tools",
    "content": [
        {
            "type": "server_tool_use",
            "id": "srvtoolu_01",
            "name": "web_search",
            "input": {"query": "batchyard relay"},
        },
        {
            "type": "web_search_tool_result",
            "tool_use_id": "srvtoolu_01",
            "content": [
                {
                    "type": "web_search_result",
                    "url": "https://example.com/relay",
                    "title": "Relays",
                    "encrypted_content": "EqQBCioIAhgB",
                    "page_age": None,
                }
            ],
        },
        {"type": "text", "text": "Found it.", "citations": None},
        {"type": "hologram_2027", "payload": {"frames": [1, 2, 3]}},
    ],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "container": {"id": "container_01", "expires_at": "2030-01-01T00:00:00Z"},
    "usage": {
        "input_tokens": 11,
        "output_tokens": 7,
        "cache_creation_input_tokens": None,
        "cache_read_input_tokens": None,
        "cache_creation": None,
        "server_tool_use": {"web_search_requests": 1},
        "service_tier": "standard",
    },
    "future_field": {"nested": [1, 2.5, "three"]},
}

MODEL_INFO: dict[str, Any] = {
    "type": "model",
    "id": "up-tools",
    "display_name": "Up Tools",
    "created_at": "2026-01-01T00:00:00Z",
    "max_input_tokens": 200000,
    "max_tokens": 64000,
    "capabilities": {
        "batch": {"supported": True},
        "citations": {"supported": True},
        "code_execution": {"supported": True},
        "context_management": {"supported": True},
        "effort": {
            "supported": True,
            **{level: {"supported": True} for level in ("low", "medium", "high", "max")},
        },
        "image_input": {"supported": True},
        "pdf_input": {"supported": True},
        "server_tools": {
            "supported": True,
            "code_execution": {"supported": True},
            "web_search": {"supported": True},
        },
        "structured_outputs": {"supported": True},
        "thinking": {
            "supported": True,
            "types": {
                kind: {"supported": True}
                for kind in ("adaptive", "between_tools", "disabled", "enabled")
            },
        },
        "holograms": {"supported": True},
    },
}


def _sse(name: str, payload: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()


STREAM_HEAD = _sse(
    "message_start",
    {
        "type": "message_start",
        "message": {
            **{key: TOOLS_ANSWER[key] for key in ("id", "type", "role", "model")},
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 11, "output_tokens": 1},
        },
    },
) + _sse("ping", {"type": "ping"})
STREAM_TAIL = (
    _sse(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    )
    + _sse(
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
    )
    + _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
    + _sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 2},
        },
    )
    + _sse("message_stop", {"type": "message_stop"})
)


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(self.body)
        return decoded


class RecordingUpstream:
    """The server (under uvicorn in a thread) and what it has received."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        #: Set by a test to let a held stream (``up-tools``, ``stream: true``) finish.
        self.release = threading.Event()
        self.port = free_port()
        app = Starlette(
            routes=[
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/messages/count_tokens", self._count_tokens, methods=["POST"]),
                Route("/v1/models/{model_id}", self._model, methods=["GET"]),
            ]
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RecordingUpstream:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the recording upstream did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.release.set()
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def calls(self, path: str, marker: str) -> list[Received]:
        """What arrived at ``path`` with ``marker`` anywhere in its body."""
        return [r for r in self.received if r.path == path and marker.encode() in r.body]

    async def _record(self, request: Request) -> Received:
        received = Received(
            path=request.url.path,
            headers={name: value for name, value in request.headers.items()},
            body=await request.body(),
        )
        self.received.append(received)
        return received

    async def _messages(self, request: Request) -> Response:
        received = await self._record(request)
        body = received.json
        model = body.get("model")
        if model == "up-garbage":
            return Response(b"<html>upstream proxy hiccup</html>", media_type="text/html")
        if model == "up-truncated":
            cut = json.dumps(TOOLS_ANSWER)[:80]
            return Response(cut.encode(), media_type="application/json")
        if model == "up-overloaded":
            error = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
            return JSONResponse(error, status_code=529)
        if model == "up-error200":
            error = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
            return JSONResponse(error)
        if model == "up-unauthorized":
            error = {"type": "error", "error": {"type": "authentication_error", "message": "no"}}
            return JSONResponse(error, status_code=401)
        if model == "up-trickle":
            return StreamingResponse(self._trickle(), media_type="text/event-stream")
        if body.get("stream"):
            return StreamingResponse(self._held_stream(), media_type="text/event-stream")
        return JSONResponse(copy.deepcopy(TOOLS_ANSWER))

    async def _held_stream(self) -> AsyncIterator[bytes]:
        yield STREAM_HEAD
        await asyncio.to_thread(self.release.wait, 30)
        yield STREAM_TAIL

    async def _trickle(self) -> AsyncIterator[bytes]:
        events = [STREAM_HEAD, *(_sse("ping", {"type": "ping"}) for _ in range(4)), STREAM_TAIL]
        for event in events:
            yield event
            await asyncio.sleep(0.4)

    async def _count_tokens(self, request: Request) -> Response:
        await self._record(request)
        return JSONResponse({"input_tokens": 42})

    async def _model(self, request: Request) -> Response:
        await self._record(request)
        if request.path_params["model_id"] != "up-tools":
            error = {"type": "error", "error": {"type": "not_found_error", "message": "model"}}
            return JSONResponse(error, status_code=404)
        return JSONResponse(MODEL_INFO)
