"""An upstream's Message Batches API (Anthropic's, or another batchyard's), for the
``anthropic-batch`` engine: create, retrieve, cancel and stream results.

Like every engine it never sees the store: it is handed request bodies keyed by row id and
hands back what the upstream said. The moving part that stores and resumes is
:mod:`batchyard.worker.upstream_batches`.

Each request goes up as the client sent it with only ``model`` replaced (and ``stream``
dropped), under ``custom_id`` ``r<row id>``: unique within any upstream batch, and enough to
find the request again when its result comes back. The create carries the batch's
forwarded ``anthropic-*`` headers and an ``Idempotency-Key`` (the submission id): a batchyard
upstream answers a replay with the batch the first call made (protocol.md §15.1); Anthropic
ignores it (see §15.7 for what that means after a crash).

Options: those of the ``anthropic`` engine (``base_url``, ``api_key`` / ``api_key_env``,
``upstream_model``, ``anthropic_version``, ``max_connections``; sync calls to the model go
through that relay) plus::

    max_batch_requests = 100000   # requests per upstream batch (the upstream's limit)
    max_batch_bytes = 256000000   # create body size per upstream batch (256 MB)
    max_wait_seconds = 60.0       # how long a request may wait for others to join it
    poll_seconds = 60.0           # longest wait between two looks at a running batch
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import msgspec
from msgspec import Meta

from batchyard.config import ModelConfig, engine_options
from batchyard.engines.anthropic_http import AnthropicOptions, upstream_error
from batchyard.errors import EngineError, UnreadableAnswer
from batchyard.protocol.routing import ForwardedHeaders, with_model

#: Bounds every upstream call but a results download (which streams for as long as it takes).
_CALL_TIMEOUT = 120.0


class BatchOptions(AnthropicOptions, forbid_unknown_fields=True):
    max_batch_requests: Annotated[int, Meta(ge=1, le=100_000)] = 100_000
    max_batch_bytes: Annotated[int, Meta(ge=1024)] = 256_000_000
    max_wait_seconds: Annotated[float, Meta(ge=0)] = 60.0
    poll_seconds: Annotated[float, Meta(gt=0)] = 60.0


def batch_options(model: ModelConfig) -> BatchOptions:
    return engine_options(model, BatchOptions)


class _Batch(msgspec.Struct):
    id: str
    processing_status: str = "in_progress"
    results_url: str | None = None


class _ErrorDetail(msgspec.Struct):
    type: str = "api_error"
    message: str = ""


class _ErrorEnvelope(msgspec.Struct):
    error: _ErrorDetail = msgspec.field(default_factory=_ErrorDetail)


class _Result(msgspec.Struct):
    type: str
    #: Empty when absent (msgspec takes no ``Raw | None``).
    message: msgspec.Raw = msgspec.Raw(b"")
    error: _ErrorEnvelope | None = None


class _Line(msgspec.Struct):
    custom_id: str
    result: _Result


_batch_decoder = msgspec.json.Decoder(_Batch)
_line_decoder = msgspec.json.Decoder(_Line)


@dataclass(frozen=True, slots=True)
class UpstreamStatus:
    ended: bool
    results_url: str | None


@dataclass(frozen=True, slots=True)
class UpstreamLine:
    """One result line: the row it is for, and what the upstream said about it."""

    row_id: int
    #: ``succeeded``, ``errored``, ``canceled`` or ``expired`` from an upstream that keeps
    #: to the API; anything else is reported as an error by the caller.
    type: str
    #: The ``Message`` JSON of a succeeded result.
    message: bytes | None
    #: The inner error of an errored result.
    error_type: str
    error_message: str


def custom_id(row_id: int) -> str:
    return f"r{row_id}"


def row_of(custom_id: str) -> int | None:
    """The row id a ``custom_id`` of ours names; ``None`` for anything else."""
    digits = custom_id[1:]
    return int(digits) if custom_id.startswith("r") and digits.isdigit() else None


class UpstreamBatchApi:
    def __init__(self, model: ModelConfig, options: BatchOptions) -> None:
        self._model = model
        self.options = options
        self.upstream_model = options.upstream_model or model.name
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        key = self.options.api_key or os.environ.get(self.options.api_key_env, "")
        self._client = httpx.AsyncClient(
            base_url=self.options.base_url.rstrip("/"),
            headers={"x-api-key": key, "anthropic-version": self.options.anthropic_version},
            limits=httpx.Limits(max_connections=self.options.max_connections),
            timeout=httpx.Timeout(_CALL_TIMEOUT, connect=10.0),
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def create_body(self, requests: Sequence[tuple[int, bytes]]) -> bytes:
        """The create body for ``(row_id, params)`` pairs: each request's params as sent,
        with the upstream's model name."""
        parts = [
            b'{"custom_id":"%s","params":%s}'
            % (
                custom_id(row_id).encode(),
                with_model(params, self.upstream_model, drop=("stream",)),
            )
            for row_id, params in requests
        ]
        return b'{"requests":[' + b",".join(parts) + b"]}"

    async def create(self, body: bytes, headers: ForwardedHeaders, *, idempotency_key: str) -> str:
        """Create the upstream batch; its id. Errors keep the upstream's type."""
        sent = [
            *headers,
            ("content-type", "application/json"),
            ("idempotency-key", idempotency_key),
        ]
        response = await self._call("POST", "/v1/messages/batches", content=body, headers=sent)
        return self._batch(response).id

    async def retrieve(self, upstream_id: str) -> UpstreamStatus:
        response = await self._call("GET", f"/v1/messages/batches/{quote(upstream_id, safe='')}")
        batch = self._batch(response)
        return UpstreamStatus(batch.processing_status == "ended", batch.results_url)

    async def cancel(self, upstream_id: str) -> None:
        await self._call("POST", f"/v1/messages/batches/{quote(upstream_id, safe='')}/cancel")

    async def results(self, results_url: str) -> AsyncIterator[UpstreamLine]:
        """The result lines at ``results_url`` as they stream in; a line that is not ours
        or not readable is skipped (its request then gets the missing-result error)."""
        client = self._started()
        try:
            async with client.stream(
                "GET", results_url, timeout=httpx.Timeout(None, connect=10.0)
            ) as response:
                if not response.is_success:
                    raise upstream_error(response, await response.aread())
                async for line in response.aiter_lines():
                    if parsed := _parse_line(line):
                        yield parsed
        except httpx.TransportError as exc:
            raise EngineError("api_error", f"upstream results broke off: {exc!r}") from None

    def _batch(self, response: httpx.Response) -> _Batch:
        try:
            return _batch_decoder.decode(response.content)
        except msgspec.DecodeError as exc:
            raise UnreadableAnswer(f"the upstream answered with no Message Batch: {exc}") from None

    def _started(self) -> httpx.AsyncClient:
        if self._client is None:
            raise EngineError("api_error", f"the upstream of {self._model.name} is not started")
        return self._client

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._started().request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise EngineError("timeout_error", f"upstream timed out: {exc!r}") from None
        except httpx.TransportError as exc:
            raise EngineError("api_error", f"upstream unreachable: {exc!r}") from None
        if not response.is_success:
            raise upstream_error(response, response.content)
        return response


def _parse_line(line: str) -> UpstreamLine | None:
    if not line.strip():
        return None
    try:
        decoded = _line_decoder.decode(line)
    except msgspec.DecodeError:
        return None
    row_id = row_of(decoded.custom_id)
    if row_id is None:
        return None
    result = decoded.result
    error = result.error.error if result.error is not None else _ErrorDetail()
    return UpstreamLine(
        row_id=row_id,
        type=result.type,
        message=bytes(result.message) or None,
        error_type=error.type,
        error_message=error.message,
    )
