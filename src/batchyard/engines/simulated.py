"""A simulated engine for load and fault tests: no model, deterministic answers.

Never served unless a config names it (``engine = "simulated"``). Each call's randomness
comes from ``seed``, the request's content and how many times that content was seen, so a
run is reproducible whatever order requests arrive in, and a retried request can succeed
where its first attempt failed.

Options (all optional)::

    latency_ms = 20              # mean latency
    latency_distribution = "fixed"  # fixed | uniform | exponential
    output_tokens = 16           # words generated before natural end (capped by max_tokens)
    seed = 0
    overloaded_rate = 0.0        # injected failures, per call, by error type
    api_error_rate = 0.0
    rate_limit_rate = 0.0
    timeout_rate = 0.0
    fail_first_calls = 0         # the first N calls for each distinct request fail ...
    fail_first_error = "overloaded_error"  # ... with this error type
    accept_unsupported = false   # see below

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
from typing import Literal

import msgspec

from batchyard import ids
from batchyard.config import ModelConfig, engine_options
from batchyard.engines.base import AnswerSink
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


class SimulatedEngine:
    """Answers with words derived from the prompt; see the module docstring for options."""

    def __init__(self, options: SimulatedOptions) -> None:
        self._options = options
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
        """The whole answer at once; ``sink`` is not called (the caller sends it all)."""
        prompt = self._prompt_words(params)
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
