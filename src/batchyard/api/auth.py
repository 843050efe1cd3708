"""API keys: ``x-api-key`` (older SDKs) or ``Authorization: Bearer`` (SDK 2.x / JS 1.x).

Any ``anthropic-version`` is accepted. A key maps to one workspace; batches are only
visible inside it.
"""

from __future__ import annotations

from starlette.requests import Request

from batchyard.errors import ApiError
from batchyard.ids import hash_api_key
from batchyard.store.protocols import KeyStore


def presented_key(request: Request) -> tuple[str, str] | None:
    """The key sent and the header it came in (``x-api-key`` wins, as in the API)."""
    if key := request.headers.get("x-api-key"):
        return key.strip(), "x-api-key"
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip(), "authorization"
    return None


async def authenticate(request: Request, keys: KeyStore) -> int:
    """The caller's workspace id, or a 401 ``authentication_error`` worded as the API words it
    for the header that carried the key."""
    presented = presented_key(request)
    if presented is None:
        raise ApiError(
            "authentication_error", "x-api-key header or Authorization: Bearer token is required"
        )
    key, header = presented
    workspace_id = await keys.workspace_for_key(hash_api_key(key))
    if workspace_id is None:
        message = "invalid x-api-key" if header == "x-api-key" else _BAD_BEARER
        raise ApiError("authentication_error", message)
    return workspace_id


_BAD_BEARER = "Invalid bearer token"
