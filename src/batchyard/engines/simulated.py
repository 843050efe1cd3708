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

Tools and structured outputs are honoured, by rule rather than by a model's judgement:

- ``tool_choice`` ``tool`` (or ``any``): the answer is one ``tool_use`` block calling the named
  tool (for ``any``, one drawn from the tools), its ``input`` a value built from the tool's
  ``input_schema`` (:mod:`batchyard.engines.schema_instances`), ``stop_reason: "tool_use"``.
- ``tool_choice`` ``auto`` (the default with tools) or ``none``: text, as without tools. A
  model that decides for itself may or may not call; this one never does, so a test knows
  what it gets, and asks for a call with ``tool``/``any`` when it wants one. No call is
  built, so the tools' schemas are not read either.
- ``output_config.format`` (or the beta ``output_format``) ``json_schema``: one text block
  holding a JSON document valid against the schema, ``stop_reason: "end_turn"`` (a forced
  tool call still wins: it has no text to shape).
- A schema keyword the generator cannot honour (``pattern``, ``not``, ``if`` ...) is refused
  naming its path (``output_config.format.schema.properties.code.pattern``), so an answer is
  never silently invalid.
- ``tool_use`` blocks (assistant turns) and ``tool_result`` blocks (user turns) in the history
  are read as text, a call as its name and JSON input, so they count as prompt words.

Output tokens are words, as for text: a JSON answer counts the words of its document (with a
space after each separator), a tool call those of its ``input``; the ``output_tokens`` option
does not apply, the schema sets the length. When that exceeds ``max_tokens`` the answer is cut
as the API cuts one, with ``stop_reason: "max_tokens"``: a JSON text stops after
``max_tokens`` words (no longer valid JSON, as a truncated answer is not), and a tool call
keeps the leading members of its ``input`` that fit (the API's partial ``input``). Stop
sequences apply to a JSON text as to any text.

It honours no thinking, image or other block, ``output_config.effort``, tool reachable only
through a server tool (``defer_loading``, ``allowed_callers`` without ``direct``) and so on:
a request asking for one is refused naming the field, like on any engine that would not honour it. A
load test that replays real production bodies (thinking, server tools, server-tool and image
blocks in the history) sets ``accept_unsupported = true``: the operator says so in the
config, and the engine then answers as if those fields and blocks were absent (server tools
are dropped from ``tools``, a ``tool_choice`` left without its tool reads as ``auto``, and a
schema keyword the generator cannot honour is ignored).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import re
from collections import Counter
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from batchyard import ids
from batchyard.config import ModelConfig, engine_options
from batchyard.engines.base import DEFAULT_CONCURRENCY, AnswerSink
from batchyard.engines.capabilities import Capabilities, refuse_unsupported
from batchyard.engines.schema_instances import WORDS, schema_instance
from batchyard.engines.schema_rules import check_schema
from batchyard.errors import EngineError, ParamsError
from batchyard.protocol.errors import ErrorType
from batchyard.protocol.messages import (
    ContentBlock,
    Message,
    MessageCountTokensParams,
    MessageCreateParams,
    StopReason,
    TextBlock,
    ToolUseBlock,
    Usage,
    block_text,
    message_text,
    system_text,
)
from batchyard.protocol.ratelimits import Quota, RateLimits
from batchyard.protocol.structured import AnswerShape, ToolSpec, answer_shape
from batchyard.timeutil import MICROS_PER_SECOND, now_us

#: What the engine honours: tools and output formats by rule (module docstring), no
#: thinking, images or other blocks.
CAPABILITIES = Capabilities(tools=True, structured_outputs=True)


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
        return [WORDS[byte % len(WORDS)] for byte in self._bytes(count)]

    def seed(self) -> int:
        """A seed for a ``random.Random``, for the answers that need its richer draws."""
        return int.from_bytes(self._bytes(8), "little")


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
        """Tools and output formats (by rule, see the module docstring); no thinking or
        images. ``accept_unsupported`` changes what is refused, not what is honoured."""
        return CAPABILITIES

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
        asked = self._read(params)
        if self._bucket is not None:
            limits = self._bucket.take()
            if sink is not None:
                sink.rate_limits(limits)
        content = f"{self._options.seed}\0{' '.join(asked.prompt)}".encode()
        self._calls[content] += 1
        call_number = self._calls[content]
        rng = _Draws(content, call_number)
        await self._sleep(rng)
        self._maybe_fail(rng, call_number)
        return self._answer(params, asked, rng)

    async def count_tokens(self, params: MessageCountTokensParams) -> int:
        """The ``input_tokens`` :meth:`create_message` reports: one token per prompt word.

        No latency and no injected failures: those options simulate generation, and a count
        must not use up a request's ``fail_first_calls``. What the create would refuse (a
        schema keyword included) is refused here too.
        """
        return len(self._read(params).prompt)

    def _read(self, params: MessageCountTokensParams) -> _Asked:
        """The prompt's words and the answer's shape, with everything this engine would not
        honour refused (or, with ``accept_unsupported``, read as absent)."""
        lenient = self._options.accept_unsupported
        if not lenient:
            refuse_unsupported(params, CAPABILITIES, params.model)
            _refuse_unreachable_tools(params)
        shape = answer_shape(_client_tools_only(params) if lenient else params)
        asked = _Asked(self._prompt_words(params), *_schemas(params, shape))
        for schema, where in asked.schemas():
            check_schema(schema, where, params.model, lenient=lenient)
        return asked

    def _prompt_words(self, params: MessageCountTokensParams) -> list[str]:
        texts = [system_text(params) or ""]
        for index, message in enumerate(params.messages):
            if self._options.accept_unsupported and isinstance(message.content, list):
                # A replayed conversation carries server-tool results, uploads, images: read
                # as absent, like the options above, so only its text and tool blocks count.
                texts.extend(
                    block_text(block, message.role, "", params.model, lenient=True)
                    for block in message.content
                )
            else:
                texts.append(message_text(message, index, params.model, tool_blocks=True))
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

    def _answer(self, params: MessageCreateParams, asked: _Asked, rng: _Draws) -> Message:
        lenient = self._options.accept_unsupported
        if asked.calls:
            return _tool_call(params, asked, random.Random(rng.seed()), lenient=lenient)
        if asked.document is not None:
            schema, where = asked.document
            draws = random.Random(rng.seed())
            value = schema_instance(schema, draws, where, params.model, lenient=lenient)
            return _text_answer(params, asked.prompt, json.dumps(value, ensure_ascii=False))
        wanted = self._options.output_tokens
        words = rng.words(min(wanted, params.max_tokens))
        return _text_answer(params, asked.prompt, " ".join(words), cut=params.max_tokens < wanted)


@dataclass(frozen=True)
class _Asked:
    """What a request asks of the engine, read once for create and count alike."""

    prompt: list[str]
    #: The tools one of which the answer calls (``tool_choice`` ``tool`` / ``any``), each with
    #: the path of its ``input_schema``.
    calls: tuple[tuple[ToolSpec, str], ...]
    #: The schema a JSON text answer follows, and its path.
    document: tuple[dict[str, Any], str] | None

    def schemas(self) -> list[tuple[dict[str, Any], str]]:
        """Every schema the answer may be built from, with its path."""
        tools = [(tool.input_schema, where) for tool, where in self.calls]
        return tools if self.document is None else [*tools, self.document]


def _schemas(
    params: MessageCountTokensParams, shape: AnswerShape
) -> tuple[tuple[tuple[ToolSpec, str], ...], tuple[dict[str, Any], str] | None]:
    """The :class:`_Asked` ``calls`` and ``document`` of ``shape``, with the path of each
    schema in the request."""
    if shape.must_call:
        names = [_client_tool_name(tool) for tool in params.tools or ()]
        calls = tuple(
            (tool, f"tools.{names.index(tool.name)}.input_schema") for tool in shape.callable_tools
        )
        return calls, None
    if shape.json_schema is None:
        return (), None
    field = (
        "output_config.format" if (params.output_config or {}).get("format") else "output_format"
    )
    return (), (shape.json_schema, f"{field}.schema")


def _refuse_unreachable_tools(params: MessageCountTokensParams) -> None:
    """Refuse a tool the model could reach only through a server tool it does not have: one
    loaded by tool search (``defer_loading``) or called from code execution alone
    (``allowed_callers`` without ``direct``). Calling it directly would ignore what was asked.
    The other keys of a tool (``strict``, ``cache_control``, ``input_examples``,
    ``eager_input_streaming``) are honoured as they are: every input built is valid."""
    for index, tool in enumerate(params.tools or ()):
        if tool.get("defer_loading"):
            raise ParamsError(f"tools.{index}.defer_loading: not supported by {params.model}")
        callers = tool.get("allowed_callers")
        if callers is not None and "direct" not in callers:
            raise ParamsError(
                f"tools.{index}.allowed_callers: only 'direct' calls are supported by "
                f"{params.model}"
            )


def _client_tool_name(tool: dict[str, Any]) -> str | None:
    """The name of a client tool (the kind a call here can be to), ``None`` for a server tool."""
    return tool.get("name") if tool.get("type") in (None, "custom") else None


def _client_tools_only(params: MessageCountTokensParams) -> MessageCountTokensParams:
    """``params`` as ``accept_unsupported`` reads them: Anthropic's server tools left out of
    ``tools``, and a ``tool_choice`` that then names no tool read as ``auto``."""
    tools = [tool for tool in params.tools or () if _client_tool_name(tool) is not None]
    choice = params.tool_choice or {}
    kind = choice.get("type", "auto")
    kept = (
        kind in ("auto", "none")
        or (kind == "any" and tools)
        or (kind == "tool" and any(tool["name"] == choice.get("name") for tool in tools))
    )
    return msgspec.structs.replace(
        params, tools=tools or None, tool_choice=params.tool_choice if kept else None
    )


def _tool_call(
    params: MessageCreateParams, asked: _Asked, draws: random.Random, *, lenient: bool
) -> Message:
    """One ``tool_use`` block; cut to the leading members of its ``input`` that fit in
    ``max_tokens`` when the whole does not (module docstring)."""
    tool, where = draws.choice(asked.calls)
    value = schema_instance(tool.input_schema, draws, where, params.model, lenient=lenient)
    if not isinstance(value, dict):
        raise ParamsError(f"{where}: a tool's input must be an object (type 'object')")
    stop_reason: StopReason = "tool_use"
    spent = _word_count(value)
    if spent > params.max_tokens:
        stop_reason, spent = "max_tokens", params.max_tokens
        kept: dict[str, Any] = {}
        for key, item in value.items():
            if _word_count({**kept, key: item}) > params.max_tokens:
                break
            kept[key] = item
        value = kept
    call = ToolUseBlock(id=ids.tool_use_id(), name=tool.name, input=value)
    return Message(
        id=ids.message_id(),
        model=params.model,
        content=[call] if params.max_tokens else [],
        stop_reason=stop_reason,
        stop_sequence=None,
        usage=Usage(input_tokens=len(asked.prompt), output_tokens=spent),
    )


def _word_count(value: dict[str, Any]) -> int:
    return len(json.dumps(value, ensure_ascii=False).split())


_WORD = re.compile(r"\S+")


def _text_answer(
    params: MessageCreateParams, prompt: list[str], text: str, *, cut: bool = False
) -> Message:
    """One text block, cut after ``max_tokens`` words (``cut``: it already was) or at the
    first stop sequence."""
    ends = [match.end() for match in _WORD.finditer(text)]
    if len(ends) > params.max_tokens:
        text, cut = text[: ends[params.max_tokens - 1]] if params.max_tokens else "", True
    stop_reason: StopReason = "max_tokens" if cut else "end_turn"
    stop_sequence: str | None = None
    for candidate in params.stop_sequences or ():
        position = text.find(candidate)
        if candidate and position >= 0:
            text, stop_reason, stop_sequence = text[:position], "stop_sequence", candidate
            break
    # Nothing generated (``max_tokens: 0``, or a stop sequence at the very start): no block,
    # as the API answers, rather than an empty text block it would refuse.
    content: list[ContentBlock] = [TextBlock(text=text)] if text else []
    return Message(
        id=ids.message_id(),
        model=params.model,
        content=content,
        stop_reason=stop_reason,
        stop_sequence=stop_sequence,
        usage=Usage(input_tokens=len(prompt), output_tokens=len(text.split())),
    )
