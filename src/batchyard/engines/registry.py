"""Model name → engine, built from the ``[[models]]`` tables of the config.

With no models configured, the embedded local model is served as ``smollm2-135m`` when the
``local`` extra is installed. The simulated engine is only ever served under a name the
config gives it explicitly.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import msgspec

from batchyard.config import DEFAULT_LOCAL_MODEL, ModelConfig
from batchyard.engines.base import DEFAULT_CONCURRENCY, Answer, Engine, Relay, RelayRequest
from batchyard.engines.sse import engine_events
from batchyard.errors import ApiError, ConfigError, EngineError, ParamsError
from batchyard.protocol.chat_translation import DEFAULT_MAX_TOKENS
from batchyard.protocol.messages import (
    Message,
    MessageTokensCount,
    decode_count_tokens_params,
    decode_params,
)
from batchyard.protocol.models import ModelCapabilities, ModelInfo, ModelPricing
from batchyard.protocol.ratelimits import RateLimits
from batchyard.protocol.routing import ForwardedHeaders, Route, check_relayed, decode_route
from batchyard.protocol.streaming import error_event

logger = logging.getLogger("batchyard.engines")

_T = TypeVar("_T")
_encoder = msgspec.json.Encoder()


def _simulated(model: ModelConfig) -> Engine:
    from batchyard.engines.simulated import SimulatedEngine

    return SimulatedEngine.from_config(model)


def _local(model: ModelConfig) -> Engine:
    from batchyard.engines.local import LocalEngine

    return LocalEngine.from_config(model)


def _anthropic(model: ModelConfig) -> Relay:
    from batchyard.engines.anthropic_http import AnthropicEngine

    return AnthropicEngine.from_config(model)


def _anthropic_batch(model: ModelConfig) -> Relay:
    """Sync calls of a passthrough model go through the plain relay; its batch requests
    never reach an engine (see :attr:`ModelRegistry.dispatched`)."""
    from batchyard.engines.anthropic_batches import batch_options
    from batchyard.engines.anthropic_http import AnthropicEngine

    return AnthropicEngine(model, batch_options(model))


#: The engine whose batch requests go upstream as Message Batches, not one call each.
PASSTHROUGH_ENGINE = "anthropic-batch"


def _openai(model: ModelConfig) -> Engine:
    from batchyard.engines.openai_http import OpenAIEngine

    return OpenAIEngine.from_config(model)


ENGINE_FACTORIES: dict[str, Callable[[ModelConfig], Engine | Relay]] = {
    "simulated": _simulated,
    "local": _local,
    "anthropic": _anthropic,
    PASSTHROUGH_ENGINE: _anthropic_batch,
    "openai": _openai,
}


def typed_answer(message: Message, limits: RateLimits | None = None) -> Answer:
    """The :class:`Answer` of an engine that answers with a typed ``Message``."""
    usage = message.usage
    return Answer(_encoder.encode(message), usage.input_tokens, usage.output_tokens, limits)


class _LimitsOnly:
    """The sink of a whole (not streamed) answer: only its rate-limit state is kept, for a
    sync answer's headers and an upstream's pacing. A batch call to a model answered here
    passes no sink, so the local engine never streams text nobody reads."""

    streams = False

    def __init__(self) -> None:
        self.limits: RateLimits | None = None

    def prompt_read(self, input_tokens: int) -> None:
        """Not needed: the whole answer reports its usage."""

    def text(self, piece: str) -> None:
        """Not needed: the whole answer has the whole text."""

    def rate_limits(self, limits: RateLimits) -> None:
        self.limits = limits


def local_extra_installed() -> bool:
    return all(importlib.util.find_spec(name) for name in ("torch", "transformers"))


def default_models() -> list[ModelConfig]:
    if local_extra_installed():
        return [ModelConfig(name=DEFAULT_LOCAL_MODEL, engine="local")]
    logger.warning(
        "no models configured and the 'local' extra is not installed: "
        "every request will fail with not_found_error"
    )
    return []


@dataclass
class ServedModel:
    """A configured model with its engine, started once on first use.

    The one place that tells a relay from an engine that runs requests itself: callers hand
    over the client's body (read only as far as :class:`Route`) and the headers to forward;
    a relay forwards them as they are (checking only ``max_tokens``), any other engine gets
    them fully validated as typed params. Every call is bounded by ``timeout_seconds`` and a
    configured ``max_output_tokens`` is enforced for every engine alike.
    """

    config: ModelConfig
    engine: Engine | Relay
    _started: asyncio.Future[None] | None = field(default=None, repr=False)
    #: The last start failed (the next call tries again).
    _failed: bool = field(default=False, repr=False)
    #: ``engine`` as the one of the two it is, told apart once: a runtime ``Protocol`` check
    #: inspects every member on each call, a tenth of the worker's time per request.
    _relay: Relay | None = field(init=False, repr=False)
    _runner: Engine | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        engine = self.engine
        self._relay, self._runner = (engine, None) if isinstance(engine, Relay) else (None, engine)

    def _own_engine(self) -> Engine:
        """The engine of a model that is not relayed (callers checked ``_relay`` first)."""
        if self._runner is None:
            raise TypeError(f"model {self.config.name} is relayed")
        return self._runner

    async def ready(self) -> Engine | Relay:
        """The started engine; a failed start is reported as a retryable ``api_error`` and
        tried again by the next call (weights on a network disk, a GPU busy at boot)."""
        if self._started is None:
            self._started = asyncio.ensure_future(self.engine.start())
        started = self._started
        try:
            await asyncio.shield(started)
        except EngineError:
            self._forget_failed_start(started)
            raise
        except Exception as exc:
            self._forget_failed_start(started)
            raise EngineError(
                "api_error", f"model {self.config.name} failed to load: {exc}"
            ) from exc
        self._failed = False
        return self.engine

    def _forget_failed_start(self, started: asyncio.Future[None]) -> None:
        if self._started is started and started.done():
            self._started = None
            self._failed = True

    @property
    def concurrency(self) -> int:
        """Requests one worker keeps in flight on it: the config's, else its engine's."""
        if self.config.concurrency is not None:
            return self.config.concurrency
        return DEFAULT_CONCURRENCY if self._runner is None else self._runner.concurrency

    @property
    def upstream(self) -> bool:
        """Whether its answers come from another server, with rate limits of its own that
        nobody may have configured here (a relay, the openai engine), rather than from this
        process."""
        return self._relay is not None or self._own_engine().upstream

    @property
    def names(self) -> list[str]:
        """Every name clients may use for this model."""
        return [self.config.name, *self.config.aliases]

    async def create_message(
        self,
        route: Route,
        body: bytes,
        headers: ForwardedHeaders = (),
        *,
        in_batch: bool,
        beta: bool = False,
    ) -> Answer:
        """Answer the request ``body`` (routed as ``route``) on this model's engine.

        ``beta``: validate against the SDK's beta types (the client named a beta); a relay
        forwards the ``anthropic-beta`` header instead and lets its upstream judge.

        A call that outlives ``timeout_seconds`` is cancelled and reported as a retryable
        ``timeout_error``, so a hung engine cannot hold a request (and its lease) forever.
        """
        if (relay := self._relay) is not None:
            self._check_output_cap(check_relayed(route, in_batch=in_batch), route.model)
            relayed = RelayRequest(body, route.model, headers)
            return await self._call(
                lambda: relay.relay_message(relayed, in_batch=in_batch), relayed=True
            )
        engine = self._own_engine()
        params = decode_params(body, in_batch=in_batch, beta=beta)
        self._check_output_cap(params.max_tokens, params.model)
        if in_batch and not self.upstream:  # nobody paces by its limits: no sink needed
            return typed_answer(await self._call(lambda: engine.create_message(params)))
        sink = _LimitsOnly()
        message = await self._call(lambda: engine.create_message(params, sink))
        return typed_answer(message, sink.limits)

    async def stream_message(
        self, route: Route, body: bytes, headers: ForwardedHeaders = (), *, beta: bool = False
    ) -> AsyncIterator[bytes]:
        """The SSE events of a sync ``stream: true`` request, once the answer has started:
        a request refused at once raises here, so it still gets a proper error status.

        A relay passes its upstream's events on as they arrive; another engine's are made
        here (:mod:`batchyard.engines.sse`). A relayed stream that falls silent for
        ``timeout_seconds`` ends with a ``timeout_error`` event.
        """
        if (relay := self._relay) is not None:
            self._check_output_cap(check_relayed(route, in_batch=False), route.model)
            relayed = RelayRequest(body, route.model, headers)
            events = await self._call(lambda: relay.relay_stream(relayed), relayed=True)
            return self._while_flowing(events)
        engine = self._own_engine()
        params = decode_params(body, in_batch=False, beta=beta)
        self._check_output_cap(params.max_tokens, params.model)
        return await engine_events(
            params.model,
            lambda sink: self._call(lambda: engine.create_message(params, sink)),
        )

    async def count_tokens(
        self, route: Route, body: bytes, headers: ForwardedHeaders = (), *, beta: bool = False
    ) -> bytes:
        """The count_tokens answer for ``body`` on this model's engine, bounded as in
        :meth:`create_message` (a relayed count is an upstream call that can hang too)."""
        if (relay := self._relay) is not None:
            relayed = RelayRequest(body, route.model, headers)
            return await self._call(lambda: relay.relay_count_tokens(relayed), relayed=True)
        engine = self._own_engine()
        params = decode_count_tokens_params(body, beta=beta)
        input_tokens = await self._call(lambda: engine.count_tokens(params))
        return _encoder.encode(MessageTokensCount(input_tokens=input_tokens))

    def model_info(self, name: str) -> ModelInfo:
        """``/v1/models``'s object for ``name``: a relay reports what its upstream said
        about its model at start; other engines what they can do. A configured
        ``max_output_tokens`` is the ``max_tokens`` reported either way, and the configured
        prices are its ``pricing`` (:meth:`pricing`)."""
        max_input: int | None = None
        capabilities: ModelCapabilities | msgspec.Raw | None = None
        if (relay := self._relay) is not None:
            upstream = relay.upstream_model
            max_output = upstream.max_tokens if upstream else None
            if upstream is not None:
                max_input, capabilities = upstream.max_input_tokens, upstream.capabilities
        else:
            engine = self._own_engine()
            max_input, max_output = engine.max_input_tokens, engine.max_output_tokens
            capabilities = engine.capabilities.wire()
        return ModelInfo(
            id=name,
            display_name=name,
            created_at="1970-01-01T00:00:00Z",
            max_tokens=self.config.max_output_tokens or max_output,
            max_input_tokens=max_input,
            capabilities=capabilities,
            pricing=self.pricing(),
        )

    def pricing(self) -> ModelPricing | None:
        """The configured prices, reported even when both are 0: a model run here with no
        price configured is free to its users (self-hosted), and saying so spares a client
        from guessing. A model answered by another server (:attr:`upstream`) with both prices
        0 reports ``None`` instead: that server bills what it bills, unknown here, and a client
        such as ``batchyard run`` then falls back to its own table of Anthropic's prices by
        model name rather than showing a relayed Claude model as free."""
        config = self.config
        if self.upstream and config.price_input_per_mtok == config.price_output_per_mtok == 0:
            return None
        return ModelPricing(
            input_per_mtok=config.price_input_per_mtok,
            output_per_mtok=config.price_output_per_mtok,
            batch_discount=config.batch_discount,
        )

    @property
    def output_limit(self) -> int | None:
        """The most output tokens one answer may have here, where known: the configured
        ``max_output_tokens``, else the engine's (or a relay's upstream's) own."""
        if self.config.max_output_tokens is not None:
            return self.config.max_output_tokens
        if (relay := self._relay) is not None:
            upstream = relay.upstream_model
            return upstream.max_tokens if upstream is not None else None
        return self._own_engine().max_output_tokens

    def _check_output_cap(self, max_tokens: int, model: str) -> None:
        """A configured ``max_output_tokens`` (a relay's upstream enforces its own)."""
        limit = self.config.max_output_tokens
        if limit is not None and max_tokens > limit:
            raise ParamsError(
                f"max_tokens: {max_tokens} > {limit}, which is the maximum allowed number "
                f"of output tokens for {model}"
            )

    async def _call(self, call: Callable[[], Awaitable[_T]], *, relayed: bool = False) -> _T:
        """``call`` once the engine has started, cancelled after ``timeout_seconds``.

        A relayed call cut short may still be answered, and billed, upstream: its timeout
        carries ``x-should-retry: false`` so an SDK does not buy it again on its own.
        """
        await self.ready()
        timeout = self.config.timeout_seconds
        try:
            async with asyncio.timeout(timeout):  # no extra task per call, unlike wait_for
                return await call()
        except TimeoutError:
            error = self._timed_out()
            if relayed:
                error.headers["x-should-retry"] = "false"
            raise error from None

    async def _while_flowing(self, events: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
        """``events`` while each arrives within ``timeout_seconds`` of the one before, then a
        ``timeout_error`` event. An idle limit, not a total one: a long answer that keeps
        streaming is not cut (the 2.x SDKs stream exactly the answers expected to be long).
        The relay's stream is closed either way (a client that went away frees its upstream
        connection)."""
        try:
            while True:
                try:
                    async with asyncio.timeout(self.config.timeout_seconds):
                        event = await anext(events)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    timed_out = self._timed_out()
                    yield error_event(timed_out.error_type, timed_out.message)
                    return
                yield event
        finally:
            await events.aclose()

    def _timed_out(self) -> EngineError:
        return EngineError(
            "timeout_error",
            f"model {self.config.name} did not answer within {self.config.timeout_seconds:g} s",
        )

    @property
    def state(self) -> str:
        """``idle`` (not asked for yet), ``loading``, ``ready`` or ``failed``."""
        if self._started is None:
            return "failed" if self._failed else "idle"
        if not self._started.done():
            return "loading"
        return "failed" if self._started.exception() else "ready"


class ModelRegistry:
    def __init__(self, models: list[ModelConfig]) -> None:
        self._by_name: dict[str, ServedModel] = {}
        self._served: list[ServedModel] = []
        for config in models:
            factory = ENGINE_FACTORIES.get(config.engine)
            if factory is None:
                known = ", ".join(sorted(ENGINE_FACTORIES))
                raise ConfigError(
                    f"models.{config.name}.engine: unknown engine "
                    f"{config.engine!r} (known: {known})"
                )
            served = ServedModel(config=config, engine=factory(config))
            self._served.append(served)
            for name in (config.name, *config.aliases):
                self._by_name[name] = served

    def get(self, name: str) -> ServedModel | None:
        return self._by_name.get(name)

    def route(self, body: bytes, validate: Callable[[bytes], object]) -> tuple[ServedModel, Route]:
        """The served model a Messages (or count_tokens) body names, and its routing view.

        ``validate`` is the full validator for this kind of body: its
        :class:`~batchyard.errors.ParamsError` is what a body that cannot be routed, or that
        names a model not served here, reports first (as for any engine); a valid body for
        a model not served is a ``not_found_error``.
        """
        route = decode_route(body, validate)
        served = self._by_name.get(route.model)
        if served is None:
            validate(body)
            raise ApiError("not_found_error", f"model: {route.model}")
        return served, route

    def default_max_tokens(self, name: str) -> int:
        """The ``max_tokens`` of a Chat Completions request to ``name`` that sets no limit:
        :data:`~batchyard.protocol.chat_translation.DEFAULT_MAX_TOKENS`, or the model's own
        output limit where that is lower (a limit the client never asked for must not be
        the reason its request is refused)."""
        served = self._by_name.get(name)
        limit = served.output_limit if served is not None else None
        return min(DEFAULT_MAX_TOKENS, limit) if limit else DEFAULT_MAX_TOKENS

    @property
    def models(self) -> list[ServedModel]:
        return list(self._served)

    @property
    def dispatched(self) -> list[ServedModel]:
        """The models whose batch requests the dispatcher runs, one engine call each."""
        return [s for s in self._served if s.config.engine != PASSTHROUGH_ENGINE]

    @property
    def passthrough(self) -> list[ServedModel]:
        """The models whose batch requests go upstream as Message Batches
        (:mod:`batchyard.worker.upstream_batches`)."""
        return [s for s in self._served if s.config.engine == PASSTHROUGH_ENGINE]

    @property
    def names(self) -> list[str]:
        """Every servable name (a passthrough model's too: nobody errors its requests as
        unserved)."""
        return list(self._by_name)

    async def warm_up(self) -> None:
        """Start every engine now (load weights) instead of on its first request."""
        await asyncio.gather(*(served.ready() for served in self._served))

    async def aclose(self) -> None:
        for served in self._served:
            await served.engine.aclose()
