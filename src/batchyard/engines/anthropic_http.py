"""An upstream engine (a :class:`~batchyard.engines.base.Relay`): any server that speaks
Anthropic's ``POST /v1/messages``.

That is Anthropic itself, and servers with an Anthropic-compatible route (vLLM, llama.cpp,
another batchyard). Each batch request becomes one upstream call; batching, retries and
results stay here.

The client's JSON goes upstream as it was sent, with only ``model`` replaced by
``upstream_model``, and the answer comes back with only ``model`` put back: blocks, fields and
betas this server has no types for pass through both ways. The client's ``anthropic-*``
headers go along (``anthropic-beta``, ``anthropic-user-profile-id`` …), except
``anthropic-version``: the relay speaks the version it is configured for, with its own key,
never the client's. The upstream validates; it refuses what it would not honour.

Upstream errors keep their Anthropic type, so overloaded / rate-limit / 5xx / timeouts are
retried by the worker (honouring ``retry-after``) and the rest become ``errored`` results
with the upstream's own message. The upstream's rate-limit headers (Anthropic's
``anthropic-ratelimit-*``, OpenAI's ``x-ratelimit-*``, ``retry-after`` in seconds or as an HTTP
date) are read into the answer's or error's ``limits``, for the worker's pacing
(:mod:`batchyard.worker.pacing`) and the sync answer's headers. A 2xx answer that is not
JSON (or is cut off) is an :class:`~batchyard.errors.UnreadableAnswer`. ``count_tokens`` is
the upstream's own ``POST /v1/messages/count_tokens``: only the upstream knows its
tokenizer. At start the relay asks ``GET /v1/models/{upstream_model}`` for the model's
limits and capabilities, which ``/v1/models`` reports (nothing, if the upstream could not
say).

Options::

    base_url = "https://api.anthropic.com"
    api_key_env = "ANTHROPIC_API_KEY"   # or api_key = "..." (prefer the environment)
    upstream_model = "claude-haiku-4-5" # default: the configured model name
    anthropic_version = "2023-06-01"
    max_connections = 64
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncGenerator
from urllib.parse import quote

import httpx
import msgspec

from batchyard.config import ModelConfig, engine_options
from batchyard.engines.base import Answer, RelayRequest
from batchyard.engines.upstream import read_body, read_error_body, send
from batchyard.errors import EngineError, UnreadableAnswer
from batchyard.protocol.errors import ERROR_TYPE_FOR_STATUS, ErrorType
from batchyard.protocol.models import ModelCapabilities, UpstreamModel
from batchyard.protocol.ratelimits import RateLimits, read_rate_limits
from batchyard.protocol.routing import (
    ForwardedHeaders,
    RawObject,
    decode_raw_object,
    encode_raw_object,
    raw_value,
    usage_counts,
    with_model,
)
from batchyard.protocol.streaming import StartRenamer, error_event
from batchyard.timeutil import now_us

logger = logging.getLogger("batchyard.engines")

#: How long the model lookup at start may take: a slow upstream must not hold up serving.
_MODEL_INFO_TIMEOUT = 10.0


class AnthropicOptions(msgspec.Struct, forbid_unknown_fields=True):
    base_url: str = "https://api.anthropic.com"
    api_key: str = ""
    api_key_env: str = "ANTHROPIC_API_KEY"
    upstream_model: str = ""
    anthropic_version: str = "2023-06-01"
    max_connections: int = 64


class _UpstreamError(msgspec.Struct):
    type: str = "api_error"
    message: str = ""


class _UpstreamErrorBody(msgspec.Struct):
    error: _UpstreamError


_error_decoder = msgspec.json.Decoder(_UpstreamErrorBody)
_model_info_decoder = msgspec.json.Decoder(UpstreamModel)
_capabilities_decoder = msgspec.json.Decoder(ModelCapabilities | None)
_type_decoder = msgspec.json.Decoder(str)
#: Statuses that say the relay itself is misconfigured (its key, its upstream model), not
#: the client: reported as a non-retryable ``api_error`` rather than passed on as the
#: client's own 401 / 404.
_RELAY_MISCONFIGURED = frozenset({401, 403, 404})
_KNOWN_ERROR_TYPES: dict[str, ErrorType] = {name: name for name in ERROR_TYPE_FOR_STATUS.values()}


class AnthropicEngine:
    """Forwards each request to ``{base_url}/v1/messages`` (counts to its ``/count_tokens``)."""

    def __init__(self, model: ModelConfig, options: AnthropicOptions) -> None:
        self._model = model
        self._options = options
        self._upstream_model_name = options.upstream_model or model.name
        self._client: httpx.AsyncClient | None = None
        self._upstream_model: UpstreamModel | None = None

    @classmethod
    def from_config(cls, model: ModelConfig) -> AnthropicEngine:
        return cls(model, engine_options(model, AnthropicOptions))

    @property
    def upstream_model(self) -> UpstreamModel | None:
        return self._upstream_model

    async def start(self) -> None:
        key = self._options.api_key or os.environ.get(self._options.api_key_env, "")
        limits = httpx.Limits(max_connections=self._options.max_connections)
        self._client = httpx.AsyncClient(
            base_url=self._options.base_url.rstrip("/"),
            headers={"x-api-key": key, "anthropic-version": self._options.anthropic_version},
            limits=limits,
            # The caller enforces the model's timeout_seconds; this only bounds connecting.
            timeout=httpx.Timeout(None, connect=10.0),
        )
        self._upstream_model = await self._ask_model_info(self._client)

    async def _ask_model_info(self, client: httpx.AsyncClient) -> UpstreamModel | None:
        """The upstream's ``GET /v1/models/{upstream_model}``, or ``None`` if it cannot say
        (not every Anthropic-compatible server has the route; requests work without it)."""
        path = f"/v1/models/{quote(self._upstream_model_name, safe='')}"
        try:
            response = await client.get(path, timeout=_MODEL_INFO_TIMEOUT)
            response.raise_for_status()
            info = _model_info_decoder.decode(response.content)
            # Passed on verbatim (newer keys too), but only if it has every key the SDKs
            # require: a partial object would fail a strict client's whole models page.
            _capabilities_decoder.decode(info.capabilities)
            return info
        except (httpx.HTTPError, msgspec.DecodeError) as exc:
            logger.warning(
                "model %s: the upstream's model info is unavailable (%s); /v1/models "
                "reports no limits or capabilities for it",
                self._model.name,
                exc,
            )
            return None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def relay_message(self, request: RelayRequest, *, in_batch: bool) -> Answer:
        drop = ("stream",) if in_batch else ()
        body = with_model(request.body, self._upstream_model_name, drop=drop)
        response = await self._open("/v1/messages", body, request.headers)
        answer = _message(response, await read_body(response))
        answer["model"] = raw_value(request.model)  # the client's name, not the upstream's
        input_tokens, output_tokens = usage_counts(answer)
        return Answer(
            encode_raw_object(answer), input_tokens, output_tokens, limits=_limits(response)
        )

    async def relay_stream(self, request: RelayRequest) -> AsyncGenerator[bytes, None]:
        body = with_model(request.body, self._upstream_model_name)
        response = await self._open("/v1/messages", body, request.headers)
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            # A 2xx that is no event stream (a proxy's page, an error object): said before
            # the first byte, as for a plain call, rather than passed on as if it were SSE.
            _message(response, await read_body(response))
            raise UnreadableAnswer("the upstream answered a stream request with no event stream")
        return _relayed_events(response, request.model)

    async def relay_count_tokens(self, request: RelayRequest) -> bytes:
        body = with_model(request.body, self._upstream_model_name)
        response = await self._open("/v1/messages/count_tokens", body, request.headers)
        content = await read_body(response)
        _json_object(content)
        return content

    async def _open(self, path: str, body: bytes, headers: ForwardedHeaders) -> httpx.Response:
        """POST ``body`` to the upstream's ``path``; the response once its status is a 2xx
        (its body still to be read), else the upstream's error as an :class:`EngineError`."""
        if self._client is None:
            raise EngineError("api_error", "the anthropic engine is not started")
        outgoing = self._client.build_request(
            "POST", path, content=body, headers=[*headers, ("content-type", "application/json")]
        )
        response = await send(self._client, outgoing)
        if response.is_success:
            return response
        raise upstream_error(response, await read_error_body(response))


def _json_object(content: bytes) -> RawObject:
    try:
        return decode_raw_object(content)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise UnreadableAnswer(f"the upstream answered with no JSON object: {exc}") from None


def _message(response: httpx.Response, content: bytes) -> RawObject:
    """A 2xx answer that is a ``message`` object. An ``error`` object (some servers send
    one with a 200) is that error; anything else is unreadable, not a success to store."""
    answer = _json_object(content)
    try:
        kind = _type_decoder.decode(answer.get("type", b"null"))
    except msgspec.DecodeError:
        kind = None
    if kind == "message":
        return answer
    if kind == "error":
        raise upstream_error(response, content)
    raise UnreadableAnswer(f"the upstream answered 2xx with a {kind!r} object, not a message")


async def _relayed_events(response: httpx.Response, model: str) -> AsyncGenerator[bytes, None]:
    """The upstream's SSE bytes as they arrive, ``model`` put into ``message_start``; a
    connection that breaks mid-stream ends with an ``error`` event."""
    renamer = StartRenamer(model)
    try:
        async for chunk in response.aiter_bytes():
            if out := renamer.feed(chunk):
                yield out
        if rest := renamer.flush():
            yield rest
    except httpx.TransportError as exc:
        yield error_event("api_error", f"the upstream's stream broke off: {exc!r}")
    finally:
        await response.aclose()


def upstream_error(response: httpx.Response, content: bytes) -> EngineError:
    """An upstream's non-2xx answer as our error: its Anthropic type and message (else the
    type its status means) and its ``retry-after``, so retries behave as against Anthropic."""
    status = response.status_code
    error_type: ErrorType = ERROR_TYPE_FOR_STATUS.get(
        status, "api_error" if status >= 500 else "invalid_request_error"
    )
    message = f"upstream answered HTTP {status}"
    try:
        detail = _error_decoder.decode(content).error
    except msgspec.DecodeError:
        pass
    else:
        error_type = _KNOWN_ERROR_TYPES.get(detail.type, error_type)
        message = detail.message or message
    limits = _limits(response)
    if status in _RELAY_MISCONFIGURED:
        error = EngineError(
            "api_error",
            f"the upstream refused this relay (HTTP {status}: {message}); check the model's "
            "base_url, api_key and upstream_model",
            retryable=False,
        )
        error.headers["x-should-retry"] = "false"  # asking again cannot help
        return error
    retry_after = limits.retry_after if limits is not None else None
    return EngineError(error_type, message, retry_after=retry_after, limits=limits)


def _limits(response: httpx.Response) -> RateLimits | None:
    """The upstream's rate-limit headers (``retry-after`` in seconds or as an HTTP date)."""
    return read_rate_limits(response.headers, now_us())
