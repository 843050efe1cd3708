"""Reading request bodies with a size cap, before any parsing."""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request

from batchyard.errors import ApiError


def _too_large(limit: int) -> ApiError:
    return ApiError(
        "request_too_large", f"Request exceeds the maximum allowed size of {limit} bytes"
    )


async def read_capped_body(request: Request, limit: int) -> bytes:
    """The whole body, or a 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        # Nobody is left to answer; an ApiError keeps this out of the error log.
        raise ApiError("invalid_request_error", "client disconnected during upload") from None
    return b"".join(chunks)
