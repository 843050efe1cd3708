"""API keys: ``x-api-key`` (older SDKs) or ``Authorization: Bearer`` (SDK 2.x / JS 1.x).

Any ``anthropic-version`` is accepted. A key maps to one workspace; batches are only
visible inside it.
"""

from __future__ import annotations

from starlette.requests import Request

from batchyard.errors import ApiError
from batchyard.ids import hash_api_key
from batchyard.store.protocols import KeyStore


def presented_key(request: Request) -> str | None:
    if key := request.headers.get("x-api-key"):
        return key.strip()
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def authenticate(request: Request, keys: KeyStore) -> int:
    """The caller's workspace id, or a 401 ``authentication_error``."""
    key = presented_key(request)
    if key is None:
        raise ApiError(
            "authentication_error", "x-api-key header or Authorization: Bearer token is required"
        )
    workspace_id = await keys.workspace_for_key(hash_api_key(key))
    if workspace_id is None:
        raise ApiError("authentication_error", "invalid x-api-key")
    return workspace_id
