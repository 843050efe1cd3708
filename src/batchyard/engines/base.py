"""The two engine interfaces, and the answer both produce.

:class:`Engine` runs requests itself (local, simulated): it takes validated, typed params
and returns a typed ``Message``, so it can refuse what it cannot honour field by field.
:class:`Relay` forwards requests to another server (the ``anthropic`` engine): it takes the
client's bytes and returns the upstream's, because that server validates the request and
any typed view of ours would drop what our types do not know (new blocks, new fields).
:class:`~batchyard.engines.registry.ServedModel` is the one place that tells them apart.

Engines are stateless with respect to batches: they never see the store, custom_ids or
leases. An engine that gains from batching (the local model) does its own grouping of the
concurrent calls it receives; the dispatcher simply keeps many calls in flight.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from batchyard.engines.capabilities import Capabilities
from batchyard.protocol.messages import Message, MessageCountTokensParams, MessageCreateParams
from batchyard.protocol.models import UpstreamModel
from batchyard.protocol.ratelimits import RateLimits
from batchyard.protocol.routing import ForwardedHeaders

#: In-flight requests per worker for an engine that batches nothing itself (the config's
#: ``concurrency`` overrides it).
DEFAULT_CONCURRENCY = 16


class AnswerSink(Protocol):
    """Receives an answer as it is made (see ``Engine.create_message``), on the event loop."""

    #: Whether the caller streams the text (a live SSE answer); ``False``: only the
    #: rate-limit state is wanted, and an engine answers as it would with no sink.
    streams: bool

    def prompt_read(self, input_tokens: int) -> None:
        """The prompt is read and counted; called once, before any text. A live stream's
        ``message_start`` carries this count, as the API's does."""
        ...

    def text(self, piece: str) -> None:
        """A piece of the answer's text that is final."""
        ...

    def rate_limits(self, limits: RateLimits) -> None:
        """This call's rate-limit state, from an engine that enforces or relays one (the
        simulated engine's ``rate_limit_rpm``, an upstream's headers); at most once, before
        any text. A sync answer sends it as ``anthropic-ratelimit-*`` headers."""
        ...


class Engine(Protocol):
    """Runs Messages requests for the models it was configured with."""

    @property
    def capabilities(self) -> Capabilities:
        """What this engine honours (it refuses the rest)."""
        ...

    @property
    def max_output_tokens(self) -> int | None:
        """The most output tokens one answer can have here, if this engine knows it."""
        ...

    @property
    def upstream(self) -> bool:
        """Whether it answers by calling another server, whose rate limits its calls are
        paced by (it reports them through :meth:`AnswerSink.rate_limits`)."""
        ...

    @property
    def concurrency(self) -> int:
        """How many requests to keep in flight on it when the config does not say: as many
        as it answers together (fewer would leave the local engine's batch half empty)."""
        ...

    @property
    def max_input_tokens(self) -> int | None:
        """The most prompt tokens a request can have here (the context window), if known."""
        ...

    async def create_message(
        self, params: MessageCreateParams, sink: AnswerSink | None = None
    ) -> Message:
        """Answer one request. ``params.model`` is the name the client asked for; echo it.

        An engine that can stream tells ``sink`` its prompt's token count, then the pieces of
        the answer's text as they are final (their concatenation is a prefix of the returned
        text; the caller sends the rest). Others ignore it. An engine with rate limits of its
        own (or its upstream's) tells ``sink`` the call's state.

        Raise :class:`~batchyard.errors.EngineError` for anything the caller should report
        or retry, and :class:`~batchyard.errors.ParamsError` for content this engine cannot
        take.
        """
        ...

    async def count_tokens(self, params: MessageCountTokensParams) -> int:
        """The ``input_tokens`` that :meth:`create_message` would report for these params.

        Exact: the engine tokenizes itself. A client sizes a request with it before sending.
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


@dataclass(frozen=True, slots=True)
class Answer:
    """A finished answer: the ``Message`` JSON as the client gets it, the token counts
    of its usage (kept beside a batch outcome for reports, without decoding it again), and
    the rate-limit state the engine or its upstream reported with it, if any (the worker
    paces later calls by it; the sync API sends it as headers)."""

    message: bytes
    input_tokens: int
    output_tokens: int
    limits: RateLimits | None = None


@dataclass(frozen=True, slots=True)
class RelayRequest:
    """A request to forward: the client's JSON body as received, the model name the client
    asked for (the answer names it, not the upstream's), and the headers to pass on."""

    body: bytes
    model: str
    headers: ForwardedHeaders = ()


@runtime_checkable
class Relay(Protocol):
    """Forwards requests to an Anthropic-compatible server, which validates them.

    The body goes out as the client sent it with only ``model`` replaced, and the answer
    comes back as the upstream sent it with only ``model`` replaced, so nothing either side
    sends is lost here. Errors are :class:`~batchyard.errors.EngineError` with the
    upstream's own type and message.
    """

    @property
    def upstream_model(self) -> UpstreamModel | None:
        """What the upstream reported about its model at start, if it could be asked."""
        ...

    async def relay_message(self, request: RelayRequest, *, in_batch: bool) -> Answer:
        """The upstream's whole answer; ``in_batch`` drops ``stream`` from the body."""
        ...

    async def relay_stream(self, request: RelayRequest) -> AsyncGenerator[bytes, None]:
        """The upstream's SSE bytes as they arrive, once it has accepted the request.

        A refusal (any non-2xx before the first byte) is raised here, so the caller still
        answers with a proper error status; a failure later becomes an SSE ``error`` event.
        A generator, so the caller can close it (and the upstream connection) at any point.
        """
        ...

    async def relay_count_tokens(self, request: RelayRequest) -> bytes:
        """The upstream's count_tokens answer as it sent it."""
        ...

    async def start(self) -> None:
        """Open connection pools and ask the upstream about its model (failure tolerated)."""
        ...

    async def aclose(self) -> None:
        """Release what ``start`` acquired."""
        ...
