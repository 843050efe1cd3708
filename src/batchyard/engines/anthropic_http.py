"""An upstream engine: any server that speaks Anthropic's ``POST /v1/messages``.

That is Anthropic itself, and servers with an Anthropic-compatible route (vLLM, llama.cpp,
another batchyard). Each batch request becomes one upstream call; batching, retries and
results stay here. Upstream errors keep their Anthropic type, so overloaded / rate-limit /
5xx / timeouts are retried by the worker (honouring ``retry-after``) and the rest become
``errored`` results with the upstream's own message. ``count_tokens`` is the upstream's own
``POST /v1/messages/count_tokens``: only the upstream knows its tokenizer.

Options::

    base_url = "https://api.anthropic.com"
    api_key_env = "ANTHROPIC_API_KEY"   # or api_key = "..." (prefer the environment)
    upstream_model = "claude-haiku-4-5" # default: the configured model name
    anthropic_version = "2023-06-01"
    max_connections = 64
"""

from __future__ import annotations

import os
from typing import TypeVar

import httpx
import msgspec

from batchyard.config import ModelConfig, engine_options
from batchyard.engines.base import TextSink
from batchyard.errors import EngineError
from batchyard.protocol.errors import ERROR_TYPE_FOR_STATUS, ErrorType
from batchyard.protocol.messages import (
    Message,
    MessageCountTokensParams,
    MessageCreateParams,
    MessageTokensCount,
)


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


_message_decoder = msgspec.json.Decoder(Message)
_count_decoder = msgspec.json.Decoder(MessageTokensCount)
_error_decoder = msgspec.json.Decoder(_UpstreamErrorBody)
_encoder = msgspec.json.Encoder()
_KNOWN_ERROR_TYPES: dict[str, ErrorType] = {name: name for name in ERROR_TYPE_FOR_STATUS.values()}
_Answer = TypeVar("_Answer", Message, MessageTokensCount)


class AnthropicEngine:
    """Forwards each request to ``{base_url}/v1/messages`` (counts to its ``/count_tokens``)."""

    def __init__(self, model: ModelConfig, options: AnthropicOptions) -> None:
        self._model = model
        self._options = options
        self._upstream_model = options.upstream_model or model.name
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def from_config(cls, model: ModelConfig) -> AnthropicEngine:
        return cls(model, engine_options(model, AnthropicOptions))

    @property
    def capabilities(self) -> None:
        """Not known here: the upstream honours or refuses each feature itself."""
        return None

    @property
    def max_output_tokens(self) -> None:
        """Not known here: the upstream refuses a ``max_tokens`` above its model's limit."""
        return None

    async def start(self) -> None:
        key = self._options.api_key or os.environ.get(self._options.api_key_env, "")
        limits = httpx.Limits(max_connections=self._options.max_connections)
        self._client = httpx.AsyncClient(
            base_url=self._options.base_url.rstrip("/"),
            headers={"x-api-key": key, "anthropic-version": self._options.anthropic_version},
            limits=limits,
            # The worker enforces the model's timeout_seconds; this only bounds connecting.
            timeout=httpx.Timeout(None, connect=10.0),
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def create_message(
        self, params: MessageCreateParams, on_text: TextSink | None = None
    ) -> Message:
        """The whole answer at once; ``on_text`` is not called (the caller sends it all)."""
        body = msgspec.structs.replace(params, model=self._upstream_model, stream=None)
        message = await self._post("/v1/messages", body, _message_decoder)
        # The client asked for ``params.model``: the answer names it, not the upstream's model.
        return msgspec.structs.replace(message, model=params.model)

    async def count_tokens(self, params: MessageCountTokensParams) -> int:
        """The upstream's count for ``upstream_model``, errors typed as for create."""
        body = msgspec.structs.replace(params, model=self._upstream_model)
        count = await self._post("/v1/messages/count_tokens", body, _count_decoder)
        return count.input_tokens

    async def _post(
        self,
        path: str,
        body: MessageCountTokensParams,
        decoder: msgspec.json.Decoder[_Answer],
    ) -> _Answer:
        """``body`` to the upstream's ``path``, its answer decoded; failures typed as
        :class:`EngineError` with the upstream's own error type and message."""
        if self._client is None:
            raise EngineError("api_error", "the anthropic engine is not started")
        try:
            response = await self._client.post(
                path, content=_encoder.encode(body), headers={"content-type": "application/json"}
            )
        except httpx.TimeoutException as exc:
            raise EngineError("timeout_error", f"upstream timed out: {exc}") from None
        except httpx.TransportError as exc:
            raise EngineError("api_error", f"upstream unreachable: {exc}") from None
        if response.is_success:
            try:
                return decoder.decode(response.content)
            except msgspec.DecodeError as exc:
                # The upstream answered (and billed): asking again would only repeat this.
                raise EngineError(
                    "api_error", f"unexpected upstream response: {exc}", retryable=False
                ) from None
        raise _upstream_error(response)


def _upstream_error(response: httpx.Response) -> EngineError:
    status = response.status_code
    error_type: ErrorType = ERROR_TYPE_FOR_STATUS.get(
        status, "api_error" if status >= 500 else "invalid_request_error"
    )
    message = f"upstream answered HTTP {status}"
    try:
        detail = _error_decoder.decode(response.content).error
    except msgspec.DecodeError:
        pass
    else:
        error_type = _KNOWN_ERROR_TYPES.get(detail.type, error_type)
        message = detail.message or message
    return EngineError(error_type, message, retry_after=_retry_after(response))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
