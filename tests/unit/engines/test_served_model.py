"""``ServedModel``: engines start on first use, and every call is bounded by the model's
``timeout_seconds``; ``count_tokens`` goes through the same path as ``create_message``."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from batchyard.config import ModelConfig
from batchyard.engines.registry import ModelRegistry, ServedModel
from batchyard.errors import EngineError, ParamsError
from batchyard.protocol.messages import decode_params
from batchyard.protocol.routing import Route, decode_route

PROMPT = {"model": "sim", "messages": [{"role": "user", "content": "count these four words"}]}


def registry(**options: object) -> ModelRegistry:
    return ModelRegistry(
        [ModelConfig(name="sim", engine="simulated", timeout_seconds=0.05, options=options)]
    )


def routed(body: dict[str, Any]) -> tuple[Route, bytes]:
    raw = json.dumps(body).encode()
    return decode_route(raw, lambda raw: decode_params(raw, in_batch=False)), raw


async def create(served: ServedModel, body: dict[str, Any]) -> dict[str, Any]:
    route, raw = routed(body)
    answer = await served.create_message(route, raw, in_batch=False)
    message: dict[str, Any] = msgspec.json.decode(answer.message)
    return message


async def test_count_tokens_starts_the_engine_like_create() -> None:
    served = registry().get("sim")
    assert served is not None and served.state == "idle"
    assert msgspec.json.decode(await served.count_tokens(*routed(PROMPT))) == {"input_tokens": 4}
    assert served.state == "ready"


async def test_a_call_past_timeout_seconds_is_a_timeout_error() -> None:
    served = registry(latency_ms=5000).get("sim")
    assert served is not None
    with pytest.raises(EngineError) as caught:
        await create(served, {**PROMPT, "max_tokens": 4})
    assert caught.value.error_type == "timeout_error" and caught.value.retryable
    assert caught.value.message == "model sim did not answer within 0.05 s"


async def test_a_configured_output_cap_is_enforced_and_none_means_the_engines_own() -> None:
    capped = ModelRegistry(
        [ModelConfig(name="sim", engine="simulated", aliases=["big"], max_output_tokens=16)]
    )
    served = capped.get("big")
    assert served is not None
    with pytest.raises(ParamsError) as caught:
        await create(served, {**PROMPT, "model": "big", "max_tokens": 17})
    assert caught.value.message == (
        "max_tokens: 17 > 16, which is the maximum allowed number of output tokens for big"
    )
    uncapped = registry().get("sim")
    assert uncapped is not None
    message = await create(uncapped, {**PROMPT, "max_tokens": 64000})
    assert message["stop_reason"] == "end_turn"


def test_pricing_is_the_configured_one_and_unknown_for_an_unpriced_upstream() -> None:
    """A model run here reports its prices even at 0 (free); one answered by another server
    reports what is configured, or nothing where nothing is (that server's price is unknown
    here, and a client falls back to its own table rather than showing it as free)."""
    models = ModelRegistry(
        [
            ModelConfig(name="sim", engine="simulated"),
            ModelConfig(name="claude", engine="anthropic"),
            ModelConfig(name="gpt", engine="openai"),
            ModelConfig(
                name="gpt-priced",
                engine="openai",
                price_input_per_mtok=2.5,
                price_output_per_mtok=10.0,
                batch_discount=0.4,
            ),
        ]
    )

    def pricing(name: str) -> object:
        served = models.get(name)
        assert served is not None
        return msgspec.to_builtins(served.model_info(name).pricing)

    assert pricing("sim") == {"input_per_mtok": 0.0, "output_per_mtok": 0.0, "batch_discount": 0.5}
    assert pricing("claude") is None and pricing("gpt") is None
    assert pricing("gpt-priced") == {
        "input_per_mtok": 2.5,
        "output_per_mtok": 10.0,
        "batch_discount": 0.4,
    }
