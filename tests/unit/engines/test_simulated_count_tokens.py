"""The simulated engine's ``count_tokens`` is the ``input_tokens`` its answers report."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from batchyard.config import ModelConfig
from batchyard.engines.simulated import SimulatedEngine
from batchyard.errors import EngineError, ParamsError
from batchyard.protocol.messages import MessageCountTokensParams, MessageCreateParams


def engine(**options: Any) -> SimulatedEngine:
    return SimulatedEngine.from_config(ModelConfig(name="sim", engine="simulated", options=options))


def both(**prompt: Any) -> tuple[MessageCreateParams, MessageCountTokensParams]:
    """The same prompt as a create body and as a count_tokens body."""
    body = {"model": "sim", **prompt}
    return (
        msgspec.convert({**body, "max_tokens": 8}, MessageCreateParams),
        msgspec.convert(body, MessageCountTokensParams),
    )


@pytest.mark.parametrize(
    "prompt",
    [
        pytest.param({"messages": [{"role": "user", "content": "hello"}]}, id="one-word"),
        pytest.param(
            {
                "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Ok"}],
                "messages": [
                    {"role": "user", "content": "What is   an index?"},
                    {"role": "assistant", "content": "An index is"},
                ],
            },
            id="system-blocks-and-prefill",
        ),
        pytest.param(
            {
                "system": "You sort tickets.",
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "a b"}]},
                    {"role": "user", "content": "c\nd e"},
                ],
            },
            id="system-string-and-same-role-turns",
        ),
    ],
)
async def test_count_equals_the_input_tokens_of_the_answer(prompt: dict[str, Any]) -> None:
    sim = engine()
    create, count = both(**prompt)
    counted = await sim.count_tokens(count)
    assert counted > 0
    assert counted == (await sim.create_message(create)).usage.input_tokens


async def test_counting_uses_up_none_of_the_injected_failures() -> None:
    sim = engine(fail_first_calls=1)
    create, count = both(messages=[{"role": "user", "content": "hello"}])
    assert await sim.count_tokens(count) == await sim.count_tokens(count) == 1
    with pytest.raises(EngineError, match="call 1"):
        await sim.create_message(create)
    assert (await sim.create_message(create)).usage.input_tokens == 1


async def test_content_the_engine_cannot_read_is_refused_as_on_create() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": ""}}
    create, count = both(messages=[{"role": "user", "content": [image]}])
    sim = engine()
    with pytest.raises(ParamsError) as counted:
        await sim.count_tokens(count)
    with pytest.raises(ParamsError) as created:
        await sim.create_message(create)
    assert counted.value.message == created.value.message
    assert counted.value.message.startswith("messages.0.content.0: ")


async def test_unsupported_features_are_refused_unless_the_config_accepts_them() -> None:
    """Refused by name by default; ``accept_unsupported`` (for load tests replaying real
    bodies) answers as if the fields were absent (a server tool dropped from ``tools``), and
    the model still says it does not think."""
    server_tool = [{"type": "web_search_20250305", "name": "web_search"}]
    create, count = both(
        messages=[{"role": "user", "content": "hi there"}],
        tools=server_tool,
        thinking={"type": "adaptive"},
    )
    with pytest.raises(ParamsError, match=r"^thinking: 'adaptive' thinking is not supported"):
        await engine().create_message(create)
    relaxed = engine(accept_unsupported=True)
    message = await relaxed.create_message(create)
    assert message.usage.input_tokens == await relaxed.count_tokens(count) == 2
    assert relaxed.capabilities is not None and not relaxed.capabilities.thinking


async def test_accept_unsupported_reads_non_text_blocks_as_absent() -> None:
    """A replayed conversation has tool calls and server-tool results in its history: with
    ``accept_unsupported`` only its text is read (and counted); by default the first non-text
    block is refused by its path."""
    messages = [
        {"role": "user", "content": "find it"},
        {
            "role": "assistant",
            "content": [
                {"type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search"},
                {"type": "text", "text": "found it"},
            ],
        },
        {"role": "user", "content": [{"type": "container_upload"}, {"type": "text", "text": "ok"}]},
    ]
    create, count = both(messages=messages)
    with pytest.raises(ParamsError, match=r"^messages\.1\.content\.0: .*'server_tool_use'"):
        await engine().create_message(create)
    relaxed = engine(accept_unsupported=True)
    message = await relaxed.create_message(create)
    assert message.usage.input_tokens == await relaxed.count_tokens(count) == 5
