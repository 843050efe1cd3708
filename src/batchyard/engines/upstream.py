"""What every engine that calls an upstream over HTTP does alike: send a request and report
a connection failure, read a 2xx body whole (``retry-after`` and the rate-limit headers are
read by :func:`batchyard.protocol.ratelimits.read_rate_limits`).

The upstream's own error bodies and answers differ by API (Anthropic's, OpenAI's) and are
read by each engine.
"""

from __future__ import annotations

import httpx

from batchyard.errors import EngineError, UnreadableAnswer


async def send(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """``request`` sent, its response's body still to be read; a timeout is a
    ``timeout_error``, any other connection failure an ``api_error`` (both retried)."""
    try:
        return await client.send(request, stream=True)
    except httpx.TimeoutException as exc:
        raise EngineError("timeout_error", f"upstream timed out: {exc}") from None
    except httpx.TransportError as exc:
        raise EngineError("api_error", f"upstream unreachable: {exc}") from None


async def read_error_body(response: httpx.Response) -> bytes:
    """The body of a refusal, or nothing if it cannot be read: the status says enough."""
    try:
        return await response.aread()
    except httpx.TransportError:
        return b""
    finally:
        await response.aclose()


async def read_body(response: httpx.Response) -> bytes:
    """The whole body of a 2xx answer; one that breaks off is unreadable."""
    try:
        return await response.aread()
    except httpx.TransportError as exc:
        raise UnreadableAnswer(f"the upstream's answer broke off: {exc!r}") from None
    finally:
        await response.aclose()
