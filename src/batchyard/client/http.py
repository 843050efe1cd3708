"""A small async client for the Message Batches API of any Anthropic-compatible server.

``batchyard run`` and ``batchyard batches`` talk to batchyard or to Anthropic itself through
this one class, decoding answers into the same typed structs the server encodes them from
(:mod:`batchyard.protocol.batches`). Not the ``anthropic`` SDK: the run keeps raw result lines
on disk before parsing them, sends an ``Idempotency-Key`` with every create, and must not
depend on an SDK release whose types move every few weeks.

Calls are retried, with the server's ``retry-after`` when it sends one, on what is about load
or luck (a dropped connection, 408, 409, 429, 5xx, 529): a nightly run that polls for hours
must outlive a server restart. A create is retried too: its ``Idempotency-Key`` makes a retry
that follows a create which did commit return that batch instead of a second one (on
batchyard; Anthropic ignores the header, as the SDK's own retries do).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

import httpx
import msgspec

from batchyard.client.pricing import Price
from batchyard.protocol.batches import MessageBatch, MessageBatchPage

T = TypeVar("T")

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_BASE_URL = "https://api.anthropic.com"
#: Statuses worth another try: the request may well succeed later as it is.
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
MAX_ATTEMPTS = 8
_RETRY_BASE_SECONDS = 0.5
_RETRY_MAX_SECONDS = 30.0


class ApiError(Exception):
    """The server refused a call (after retries, where retrying could help)."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(f"{status} {error_type}: {message}")
        self.status = status
        self.error_type = error_type
        self.message = message


class _ErrorDetail(msgspec.Struct):
    type: str = "api_error"
    message: str = ""


class _ErrorBody(msgspec.Struct):
    error: _ErrorDetail


class _TokenCount(msgspec.Struct):
    input_tokens: int


class ModelFacts(msgspec.Struct):
    """What ``GET /v1/models/{id}`` says that a run checks before submitting."""

    id: str
    max_tokens: int | None = None
    #: batchyard's ``pricing`` extension (Anthropic reports none).
    pricing: Price | None = None


_batch = msgspec.json.Decoder(MessageBatch)
_page = msgspec.json.Decoder(MessageBatchPage)
_count = msgspec.json.Decoder(_TokenCount)
_model = msgspec.json.Decoder(ModelFacts)
_error = msgspec.json.Decoder(_ErrorBody)


@dataclass(frozen=True)
class Connection:
    """Where the API is and who is calling."""

    base_url: str
    api_key: str
    transport: httpx.AsyncBaseTransport | None = None


class BatchApi:
    """The calls a batch client makes, each one retried as the module docstring says."""

    def __init__(self, connection: Connection, *, timeout: float = 120.0) -> None:
        self._http = httpx.AsyncClient(
            base_url=connection.base_url.rstrip("/"),
            transport=connection.transport,
            timeout=timeout,
            headers={
                "x-api-key": connection.api_key,
                "anthropic-version": ANTHROPIC_VERSION,
                "user-agent": "batchyard-run",
            },
        )

    async def __aenter__(self) -> BatchApi:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def create(self, body: bytes, *, idempotency_key: str) -> MessageBatch:
        """``body`` is a whole ``{"requests": [...]}`` document, encoded once by the caller."""
        response = await self._call(
            "POST",
            "/v1/messages/batches",
            content=body,
            headers={"content-type": "application/json", "idempotency-key": idempotency_key},
        )
        return _batch.decode(response.content)

    async def retrieve(self, batch_id: str) -> MessageBatch:
        return _batch.decode((await self._call("GET", f"/v1/messages/batches/{batch_id}")).content)

    async def cancel(self, batch_id: str) -> MessageBatch:
        path = f"/v1/messages/batches/{batch_id}/cancel"
        return _batch.decode((await self._call("POST", path)).content)

    async def list(self, *, limit: int = 20, after_id: str | None = None) -> MessageBatchPage:
        query: dict[str, str | int] = {"limit": limit}
        if after_id is not None:
            query["after_id"] = after_id
        response = await self._call("GET", "/v1/messages/batches", params=query)
        return _page.decode(response.content)

    async def count_tokens(self, params: bytes) -> int:
        """Input tokens of one request's ``params`` (model, system, messages, tools)."""
        response = await self._call(
            "POST",
            "/v1/messages/count_tokens",
            content=params,
            headers={"content-type": "application/json"},
        )
        return _count.decode(response.content).input_tokens

    async def model(self, model: str) -> ModelFacts:
        return _model.decode((await self._call("GET", f"/v1/models/{model}")).content)

    async def download_results(self, batch_id: str, path: Path) -> None:
        """Write the batch's result lines to ``path`` byte for byte, whole or not at all.

        They land in ``path`` with a ``.part`` suffix first and are renamed when the body
        ended as the server said it would, so a cut download is fetched again, never parsed.
        """
        partial = path.with_name(path.name + ".part")

        async def attempt() -> None:
            with partial.open("wb") as out:
                await self.copy_results(batch_id, out)

        await _retrying(attempt)
        partial.replace(path)

    async def copy_results(self, batch_id: str, sink: IO[bytes]) -> None:
        """Stream the batch's result lines into ``sink`` (one attempt: bytes already written
        cannot be taken back)."""
        url = f"/v1/messages/batches/{batch_id}/results"
        async with self._http.stream("GET", url) as response:
            if response.status_code != 200:
                await response.aread()
                _raise_for(response)
            async for chunk in response.aiter_bytes():
                sink.write(chunk)

    async def _call(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        async def attempt() -> httpx.Response:
            response = await self._http.request(method, path, **kwargs)  # type: ignore[arg-type]
            if response.status_code >= 400:
                _raise_for(response)
            return response

        return await _retrying(attempt)

    async def batches(self) -> AsyncIterator[MessageBatch]:
        """Every batch the key can see, newest first, page by page."""
        after: str | None = None
        while True:
            page = await self.list(limit=100, after_id=after)
            for batch in page.data:
                yield batch
            if not page.has_more or page.last_id is None:
                return
            after = page.last_id


class _Retryable(Exception):
    def __init__(self, error: Exception, retry_after: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def _raise_for(response: httpx.Response) -> None:
    try:
        detail = _error.decode(response.content).error
    except msgspec.DecodeError:
        detail = _ErrorDetail(message=response.text[:500] or response.reason_phrase)
    error = ApiError(response.status_code, detail.type, detail.message)
    if response.status_code in RETRY_STATUSES:
        raise _Retryable(error, _retry_after(response))
    raise error


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None


async def _retrying(attempt: Callable[[], Awaitable[T]]) -> T:
    number = 1
    while True:
        try:
            return await attempt()
        except (_Retryable, httpx.TransportError) as exc:
            if number == MAX_ATTEMPTS:
                raise (exc.error if isinstance(exc, _Retryable) else exc) from None
            wait = exc.retry_after if isinstance(exc, _Retryable) else None
            if wait is None:
                ceiling = min(_RETRY_MAX_SECONDS, _RETRY_BASE_SECONDS * 2 ** (number - 1))
                wait = random.uniform(ceiling / 2, ceiling)
            await asyncio.sleep(min(wait, _RETRY_MAX_SECONDS))
            number += 1
