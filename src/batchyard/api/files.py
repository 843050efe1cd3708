"""HTTP routes of OpenAI's Files API (docs/protocol.md, "OpenAI Files")."""

from __future__ import annotations

from typing import Literal

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from batchyard.api.context import context_of
from batchyard.api.responses import REQUEST_ID_HEADER, json_response, request_id_of
from batchyard.api.uploads import read_upload
from batchyard.errors import ApiError

_MAX_LIST_LIMIT = 10_000


async def create_file(request: Request) -> Response:
    context = context_of(request)
    caller = await context.caller(request)
    async with read_upload(request, context.settings.max_file_bytes) as upload:
        created = await context.files.upload(
            caller, upload.fields, upload.filename, upload.chunks()
        )
    return json_response(request, created)


async def list_files(request: Request) -> Response:
    context = context_of(request)
    caller = await context.caller(request)
    query = request.query_params
    page = await context.files.list(
        caller,
        after=query.get("after") or None,
        limit=_limit(query.get("limit")),
        order=_order(query.get("order")),
        purpose=query.get("purpose") or None,
    )
    return json_response(request, page)


async def retrieve_file(request: Request) -> Response:
    context = context_of(request)
    caller = await context.caller(request)
    return json_response(request, await context.files.retrieve(caller, _file_id(request)))


async def delete_file(request: Request) -> Response:
    context = context_of(request)
    caller = await context.caller(request)
    return json_response(request, await context.files.delete(caller, _file_id(request)))


async def file_content(request: Request) -> Response:
    context = context_of(request)
    caller = await context.caller(request)
    content = await context.files.content(caller, _file_id(request))
    headers = {REQUEST_ID_HEADER: request_id_of(request)}
    if content.size is not None:
        headers["content-length"] = str(content.size)
    return StreamingResponse(content.chunks, media_type="application/octet-stream", headers=headers)


def _file_id(request: Request) -> str:
    file_id: str = request.path_params["file_id"]
    return file_id


def _limit(raw: str | None) -> int:
    if not raw:
        return _MAX_LIST_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= _MAX_LIST_LIMIT:
        raise ApiError(
            "invalid_request_error",
            f"limit: must be an integer from 1 to {_MAX_LIST_LIMIT}, not {raw!r}",
            param="limit",
        )
    return int(raw)


def _order(raw: str | None) -> Literal["asc", "desc"]:
    if not raw or raw == "desc":
        return "desc"
    if raw == "asc":
        return "asc"
    raise ApiError(
        "invalid_request_error", f"order: must be 'asc' or 'desc', not {raw!r}", param="order"
    )


routes = [
    Route("/v1/files", create_file, methods=["POST"]),
    Route("/v1/files", list_files, methods=["GET"]),
    Route("/v1/files/{file_id}", retrieve_file, methods=["GET"]),
    Route("/v1/files/{file_id}", delete_file, methods=["DELETE"]),
    Route("/v1/files/{file_id}/content", file_content, methods=["GET"]),
]
