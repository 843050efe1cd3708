"""The engine interface: one async call from Messages params to a ``Message`` or a typed error.

Engines are stateless with respect to batches: they never see the store, custom_ids or
leases. An engine that gains from batching (the local model) does its own grouping of the
concurrent calls it receives; the dispatcher simply keeps many calls in flight.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from batchyard.protocol.errors import RETRYABLE_ERROR_TYPES, ErrorType
from batchyard.protocol.messages import Message, MessageCreateParams

#: Receives pieces of an answer's text as they are generated (see ``Engine.create_message``).
TextSink = Callable[[str], None]


class EngineError(Exception):
    """A failed call, typed like Anthropic's errors so it can go straight into a result.

    ``retry_after`` (seconds) is a hint from the engine, e.g. an upstream ``retry-after``.
    """

    def __init__(
        self,
        error_type: ErrorType,
        message: str,
        *,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.error_type: ErrorType = error_type
        self.message = message
        self.retry_after = retry_after
        self._retryable = retryable

    @property
    def retryable(self) -> bool:
        """By type (overloaded, rate limit, 5xx, timeout), unless the engine knows better."""
        if self._retryable is not None:
            return self._retryable
        return self.error_type in RETRYABLE_ERROR_TYPES


class Engine(Protocol):
    """Runs Messages requests for the models it was configured with."""

    async def create_message(
        self, params: MessageCreateParams, on_text: TextSink | None = None
    ) -> Message:
        """Answer one request. ``params.model`` is the name the client asked for; echo it.

        An engine that can stream calls ``on_text`` on the event loop with pieces of the
        answer's text as they are final (their concatenation is a prefix of the returned
        text; the caller sends the rest). Others ignore it.

        Raise :class:`EngineError` for anything the caller should report or retry, and
        :class:`~batchyard.protocol.messages.ParamsError` for content this engine cannot take.
        """
        ...

    async def start(self) -> None:
        """Load weights, open connection pools. Called once before the first request."""
        ...

    async def aclose(self) -> None:
        """Release what ``start`` acquired."""
        ...
