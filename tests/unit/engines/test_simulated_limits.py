"""The simulated engine's ``rate_limit_rpm``: a bucket of one second's calls, reported to
the answer's sink and on the refusal; ``latency_ms_min/max``: a uniform range."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import pytest

from batchyard.config import ModelConfig
from batchyard.engines.simulated import SimulatedEngine
from batchyard.errors import EngineError
from batchyard.protocol.messages import MessageCreateParams
from batchyard.protocol.ratelimits import RateLimits


class Sink:
    def __init__(self) -> None:
        self.limits: list[RateLimits] = []

    def prompt_read(self, input_tokens: int) -> None: ...

    def text(self, piece: str) -> None: ...

    def rate_limits(self, limits: RateLimits) -> None:
        self.limits.append(limits)


def engine(**options: Any) -> SimulatedEngine:
    return SimulatedEngine.from_config(ModelConfig(name="sim", engine="simulated", options=options))


def params(text: str = "hello") -> MessageCreateParams:
    body = {"model": "sim", "max_tokens": 8, "messages": [{"role": "user", "content": text}]}
    return msgspec.convert(body, MessageCreateParams)


async def test_calls_over_the_bucket_are_refused_with_the_state() -> None:
    sim = engine(rate_limit_rpm=180)  # 3 a second, 3 held
    sink = Sink()
    for n in range(3):
        await sim.create_message(params(f"call {n}"), sink)
    assert [limits.quotas["requests"].remaining for limits in sink.limits] == [2, 1, 0]
    assert all(limits.quotas["requests"].limit == 180 for limits in sink.limits)
    with pytest.raises(EngineError) as refused:
        await sim.create_message(params("one too many"), sink)
    error = refused.value
    assert error.error_type == "rate_limit_error" and error.retryable
    assert error.retry_after is not None and 0 < error.retry_after <= 1 / 3
    assert error.limits is not None and error.limits.quotas["requests"].remaining == 0
    assert error.headers["retry-after"] == "1"
    assert error.headers["anthropic-ratelimit-requests-limit"] == "180"


async def test_a_refused_call_does_not_use_up_fail_first_calls() -> None:
    sim = engine(rate_limit_rpm=60, fail_first_calls=1)
    with pytest.raises(EngineError, match="simulated overloaded_error"):
        await sim.create_message(params())
    with pytest.raises(EngineError, match="rate limit"):
        await sim.create_message(params())


async def test_latency_in_a_range() -> None:
    sim = engine(latency_ms_min=30, latency_ms_max=60)
    started = time.monotonic()
    await sim.create_message(params())
    assert 0.03 <= time.monotonic() - started < 0.2
