"""Model name → engine, built from the ``[[models]]`` tables of the config.

With no models configured, the embedded local model is served as ``smollm2-135m`` when the
``local`` extra is installed. The simulated engine is only ever served under a name the
config gives it explicitly.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from batchyard.config import DEFAULT_LOCAL_MODEL, ModelConfig
from batchyard.engines.base import Engine, TextSink
from batchyard.errors import ConfigError, EngineError, ParamsError
from batchyard.protocol.messages import Message, MessageCountTokensParams, MessageCreateParams

logger = logging.getLogger("batchyard.engines")

_T = TypeVar("_T")


def _simulated(model: ModelConfig) -> Engine:
    from batchyard.engines.simulated import SimulatedEngine

    return SimulatedEngine.from_config(model)


def _local(model: ModelConfig) -> Engine:
    from batchyard.engines.local import LocalEngine

    return LocalEngine.from_config(model)


def _anthropic(model: ModelConfig) -> Engine:
    from batchyard.engines.anthropic_http import AnthropicEngine

    return AnthropicEngine.from_config(model)


ENGINE_FACTORIES: dict[str, Callable[[ModelConfig], Engine]] = {
    "simulated": _simulated,
    "local": _local,
    "anthropic": _anthropic,
}


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
    """A configured model with its engine, started once on first use."""

    config: ModelConfig
    engine: Engine
    _started: asyncio.Future[None] | None = field(default=None, repr=False)
    #: The last start failed (the next call tries again).
    _failed: bool = field(default=False, repr=False)

    async def ready(self) -> Engine:
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
    def names(self) -> list[str]:
        """Every name clients may use for this model."""
        return [self.config.name, *self.config.aliases]

    async def create_message(
        self, params: MessageCreateParams, on_text: TextSink | None = None
    ) -> Message:
        """Answer on this model's engine, loading it first if needed, within its timeout.

        A call that outlives ``timeout_seconds`` is cancelled and reported as a retryable
        ``timeout_error``, so a hung engine cannot hold a request (and its lease) forever. A
        configured ``max_output_tokens`` is enforced here, for every engine alike.
        """
        limit = self.config.max_output_tokens
        if limit is not None and params.max_tokens > limit:
            raise ParamsError(
                f"max_tokens: {params.max_tokens} > {limit}, which is the maximum allowed number "
                f"of output tokens for {params.model}"
            )
        return await self._call(lambda engine: engine.create_message(params, on_text))

    async def count_tokens(self, params: MessageCountTokensParams) -> int:
        """The prompt's ``input_tokens`` on this model's engine, loaded and bounded as in
        :meth:`create_message` (a relayed count is an upstream call that can hang too)."""
        return await self._call(lambda engine: engine.count_tokens(params))

    async def _call(self, call: Callable[[Engine], Awaitable[_T]]) -> _T:
        """``call`` on the started engine, cancelled after ``timeout_seconds``."""
        engine = await self.ready()
        timeout = self.config.timeout_seconds
        try:
            async with asyncio.timeout(timeout):  # no extra task per call, unlike wait_for
                return await call(engine)
        except TimeoutError:
            raise EngineError(
                "timeout_error", f"model {self.config.name} did not answer within {timeout:g} s"
            ) from None

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

    @property
    def models(self) -> list[ServedModel]:
        return list(self._served)

    @property
    def names(self) -> list[str]:
        return list(self._by_name)

    async def warm_up(self) -> None:
        """Start every engine now (load weights) instead of on its first request."""
        await asyncio.gather(*(served.ready() for served in self._served))

    async def aclose(self) -> None:
        for served in self._served:
            await served.engine.aclose()
