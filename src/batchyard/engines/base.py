"""The engine interface: one async call from Messages params to a ``Message`` or a typed error.

Engines are stateless with respect to batches: they never see the store, custom_ids or
leases. An engine that gains from batching (the local model) does its own grouping of the
concurrent calls it receives; the dispatcher simply keeps many calls in flight.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from batchyard.engines.capabilities import Capabilities
from batchyard.protocol.messages import Message, MessageCountTokensParams, MessageCreateParams

#: Receives pieces of an answer's text as they are generated (see ``Engine.create_message``).
TextSink = Callable[[str], None]


class Engine(Protocol):
    """Runs Messages requests for the models it was configured with."""

    @property
    def capabilities(self) -> Capabilities | None:
        """What this engine honours; ``None`` when another server decides (a relay)."""
        ...

    @property
    def max_output_tokens(self) -> int | None:
        """The most output tokens one answer can have here, if this engine knows it."""
        ...

    async def create_message(
        self, params: MessageCreateParams, on_text: TextSink | None = None
    ) -> Message:
        """Answer one request. ``params.model`` is the name the client asked for; echo it.

        An engine that can stream calls ``on_text`` on the event loop with pieces of the
        answer's text as they are final (their concatenation is a prefix of the returned
        text; the caller sends the rest). Others ignore it.

        Raise :class:`~batchyard.errors.EngineError` for anything the caller should report
        or retry, and :class:`~batchyard.errors.ParamsError` for content this engine cannot
        take.
        """
        ...

    async def count_tokens(self, params: MessageCountTokensParams) -> int:
        """The ``input_tokens`` that :meth:`create_message` would report for these params.

        Exact where the engine tokenizes itself; a relay returns its upstream's count (which
        Anthropic documents as an estimate). A client sizes a request with it before sending.
        Errors as for ``create_message``, including a :class:`~batchyard.errors.ParamsError` for
        content this engine cannot take.
        """
        ...

    async def start(self) -> None:
        """Load weights, open connection pools. Called once before the first request."""
        ...

    async def aclose(self) -> None:
        """Release what ``start`` acquired."""
        ...
