"""A simulated engine for load and fault tests: no model, deterministic answers.

Never served unless a config names it (``engine = "simulated"``). Each call's randomness
comes from ``seed``, the request's content and how many times that content was seen, so a
run is reproducible whatever order requests arrive in, and a retried request can succeed
where its first attempt failed.

Options (all optional)::

    latency_ms = 20              # mean latency
    latency_distribution = "fixed"  # fixed | uniform | exponential
    latency_ms_min = 200         # with latency_ms_max: uniform in [min, max] instead
    latency_ms_max = 2000
    rate_limit_rpm = 3000        # calls per minute taken; see below
    output_tokens = 16           # words generated before natural end (capped by max_tokens)
    seed = 0
    overloaded_rate = 0.0        # injected failures, per call, by error type
    api_error_rate = 0.0
    rate_limit_rate = 0.0
    timeout_rate = 0.0
    fail_first_calls = 0         # the first N calls for each distinct request fail ...
    fail_first_error = "overloaded_error"  # ... with this error type
    accept_unsupported = false   # see below

``rate_limit_rpm`` makes it behave like a rate-limited API: a call over the limit is refused
at once with ``rate_limit_error`` and a ``retry-after``, and every answer and refusal reports
``anthropic-ratelimit-requests-limit/-remaining/-reset`` (a sync answer's headers). It is not
a 60 s window, fixed or sliding: either would take a whole minute's calls in its first second
and measure nothing about pacing. It is a token bucket refilled continuously at
``rate_limit_rpm / 60`` calls a second holding one second's worth, the way Anthropic enforces
its per-minute limits ("60 RPM may be enforced as 1 request per second"). ``remaining`` is
what the bucket holds, ``reset`` when it will be full again.

It honours no tool, output format or thinking: a request asking for one is refused naming the
field, like on any engine that would not honour it. A load test that replays real production
bodies (tools, thinking, ``output_config``, tool and server-tool blocks in the history) sets
``accept_unsupported = true``: the operator says so in the config, and the engine then answers
as if those fields and blocks were absent.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections import Counter
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from batchyard import ids
from batchyard.config import ModelConfig, engine_options
from batchyard.engines.base import DEFAULT_CONCURRENCY, AnswerSink
from batchyard.engines.capabilities import TEXT_ONLY, Capabilities, refuse_unsupported
from batchyard.errors import EngineError
from batchyard.protocol.errors import ErrorType
from batchyard.protocol.messages import (
    Message,
    MessageCountTokensParams,
    MessageCreateParams,
    TextBlock,
    Usage,
    message_text,
    system_text,
)
from batchyard.protocol.ratelimits import Quota, RateLimits
from batchyard.timeutil import MICROS_PER_SECOND, now_us

_WORDS = (
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
)


class SimulatedOptions(msgspec.Struct, forbid_unknown_fields=True):
    latency_ms: float = 0.0
    latency_distribution: Literal["fixed", "uniform", "exponential"] = "fixed"
    latency_ms_min: Annotated[float, Meta(ge=0)] = 0.0
    latency_ms_max: Annotated[float, Meta(ge=0)] | None = None
    rate_limit_rpm: Annotated[int, Meta(ge=1)] | None = None
    output_tokens: int = 16
    seed: int = 0
    overloaded_rate: float = 0.0
    api_error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    timeout_rate: float = 0.0
    fail_first_calls: int = 0
    fail_first_error: ErrorType = "overloaded_error"
    accept_unsupported: bool = False


class _Draws:
    """Cheap deterministic randomness: BLAKE2b in counter mode over (content, call number).

    Seeding a ``random.Random`` per call cost more than the rest of a zero-latency call.
    """

    def __init__(self, content: bytes, call_number: int) -> None:
        self._key = hashlib.blake2b(
            content, digest_size=32, salt=call_number.to_bytes(16, "little")
        ).digest()
        self._pool = b""
        self._counter = 0

    def _bytes(self, count: int) -> bytes:
        while len(self._pool) < count:
            self._counter += 1
            self._pool += hashlib.blake2b(
                self._counter.to_bytes(8, "little"), key=self._key
            ).digest()
        taken, self._pool = self._pool[:count], self._pool[count:]
        return taken

    def random(self) -> float:
        """Uniform in [0, 1)."""
        return int.from_bytes(self._bytes(7), "little") / 2**56

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.random()

    def expovariate(self, rate: float) -> float:
        return -math.log(1.0 - self.random()) / rate

    def words(self, count: int) -> list[str]:
        return [_WORDS[byte % len(_WORDS)] for byte in self._bytes(count)]


class _RequestBucket:
    """``rate_limit_rpm`` as a token bucket of one second's calls (module docstring)."""

    def __init__(self, rpm: int) -> None:
        self._rpm = rpm
        self._per_us = rpm / 60 / MICROS_PER_SECOND
        self._capacity = max(1.0, rpm / 60)
        self._level = self._capacity
        self._at = now_us()

    def take(self) -> RateLimits:
        """Take one call, or raise the ``rate_limit_error`` a real API would answer."""
        now = now_us()
        self._level = min(self._capacity, self._level + (now - self._at) * self._per_us)
        self._at = now
        admitted = self._level >= 1
        if admitted:
            self._level -= 1
        full_at = now + int((self._capacity - self._level) / self._per_us)
        quota = Quota(self._rpm, int(self._level), full_at)
        if admitted:
            return RateLimits(seen_us=now, quotas={"requests": quota})
        wait = (1 - self._level) / self._per_us / MICROS_PER_SECOND
        refused = RateLimits(seen_us=now, quotas={"requests": quota}, retry_after=wait)
        raise EngineError(
            "rate_limit_error",
            f"Number of requests has exceeded your rate limit of {self._rpm} per minute",
            limits=refused,
        )


class SimulatedEngine:
    """Answers with words derived from the prompt; see the module docstring for options."""

    def __init__(self, options: SimulatedOptions) -> None:
        self._options = options
        self._bucket = _RequestBucket(options.rate_limit_rpm) if options.rate_limit_rpm else None
        self._calls: Counter[bytes] = Counter()  # bounded by distinct prompts seen
        self._failure_rates: list[tuple[ErrorType, float]] = [
            ("overloaded_error", options.overloaded_rate),
            ("api_error", options.api_error_rate),
            ("rate_limit_error", options.rate_limit_rate),
            ("timeout_error", options.timeout_rate),
        ]

    @classmethod
    def from_config(cls, model: ModelConfig) -> SimulatedEngine:
        return cls(engine_options(model, SimulatedOptions))

    @property
    def capabilities(self) -> Capabilities:
        """Text only: it makes up words, so it honours no tool, format or thinking."""
        return TEXT_ONLY

    @property
    def max_output_tokens(self) -> None:
        """No limit of its own (a config may set one)."""
        return None

    @property
    def upstream(self) -> bool:
        """It answers here (its own ``rate_limit_rpm`` is enforced, not paced by)."""
        return False

    @property
    def concurrency(self) -> int:
        return DEFAULT_CONCURRENCY

    @property
    def max_input_tokens(self) -> None:
        """No context window: any prompt is counted and answered."""
        return None

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def create_message(
        self, params: MessageCreateParams, sink: AnswerSink | None = None
    ) -> Message:
        """The whole answer at once; ``sink`` hears only the rate-limit state (the caller
        sends the whole text)."""
        prompt = self._prompt_words(params)
        if self._bucket is not None:
            limits = self._bucket.take()
            if sink is not None:
                sink.rate_limits(limits)
        content = f"{self._options.seed}\0{' '.join(prompt)}".encode()
        self._calls[content] += 1
        call_number = self._calls[content]
        rng = _Draws(content, call_number)
        await self._sleep(rng)
        self._maybe_fail(rng, call_number)
        return self._answer(params, prompt, rng)

    async def count_tokens(self, params: MessageCountTokensParams) -> int:
        """The ``input_tokens`` :meth:`create_message` reports: one token per prompt word.

        No latency and no injected failures: those options simulate generation, and a count
        must not use up a request's ``fail_first_calls``.
        """
        return len(self._prompt_words(params))

    def _prompt_words(self, params: MessageCountTokensParams) -> list[str]:
        if not self._options.accept_unsupported:
            refuse_unsupported(params, TEXT_ONLY, params.model)
        texts = [system_text(params) or ""]
        for index, message in enumerate(params.messages):
            if self._options.accept_unsupported and isinstance(message.content, list):
                # A replayed conversation carries tool calls, server-tool results, uploads:
                # read as absent, like the options above, so only its text counts.
                texts.extend(block.text for block in message.content if block.type == "text")
            else:
                texts.append(message_text(message, index, params.model))
        return " ".join(texts).split()

    async def _sleep(self, rng: _Draws) -> None:
        if (longest := self._options.latency_ms_max) is not None:
            await asyncio.sleep(rng.uniform(self._options.latency_ms_min, longest) / 1000)
            return
        mean = self._options.latency_ms / 1000
        if mean <= 0:
            return
        distribution = self._options.latency_distribution
        if distribution == "uniform":
            delay = rng.uniform(0, 2 * mean)
        elif distribution == "exponential":
            delay = rng.expovariate(1 / mean)
        else:
            delay = mean
        await asyncio.sleep(delay)

    def _maybe_fail(self, rng: _Draws, call_number: int) -> None:
        if call_number <= self._options.fail_first_calls:
            error_type = self._options.fail_first_error
            raise EngineError(error_type, f"simulated {error_type} (call {call_number})")
        draw = rng.random()
        for error_type, rate in self._failure_rates:
            if draw < rate:
                raise EngineError(error_type, f"simulated {error_type}")
            draw -= rate

    def _answer(self, params: MessageCreateParams, prompt: list[str], rng: _Draws) -> Message:
        wanted = self._options.output_tokens
        words = rng.words(min(wanted, params.max_tokens))
        text = " ".join(words)
        stop_reason: Literal["end_turn", "max_tokens", "stop_sequence"] = (
            "max_tokens" if params.max_tokens < wanted else "end_turn"
        )
        stop_sequence: str | None = None
        for candidate in params.stop_sequences or ():
            position = text.find(candidate)
            if candidate and position >= 0:
                text, stop_reason, stop_sequence = text[:position], "stop_sequence", candidate
                words = text.split()
                break
        return Message(
            id=ids.message_id(),
            model=params.model,
            # Nothing generated (``max_tokens: 0``, or a stop sequence at the very start): no
            # block, as the API answers, rather than an empty text block it would refuse.
            content=[TextBlock(text=text)] if text else [],
            stop_reason=stop_reason,
            stop_sequence=stop_sequence,
            usage=Usage(input_tokens=len(prompt), output_tokens=len(words)),
        )
