"""The local engine with the real embedded SmolLM2 model (loaded once per module).

Usage is checked against the tokenizer's own counts: input tokens by rendering the chat
template again, output tokens by re-tokenizing the answer (``end_turn`` adds the end-of-turn
token, which counts as generated) or, for stop sequences, as the shortest token prefix of the
unstopped greedy answer whose text contains the stop sequence.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from batchyard.config import ModelConfig
from batchyard.engines.local import LocalEngine
from batchyard.errors import ParamsError
from batchyard.protocol.messages import (
    Message,
    MessageCountTokensParams,
    MessageCreateParams,
    TextBlock,
    ToolUseBlock,
)

pytestmark = pytest.mark.local_model

os.environ.setdefault("HF_HUB_OFFLINE", "1")

QUESTIONS = [
    "Write a short note to a customer whose parcel arrived late.",
    "List three tips for writing clear emails.",
    "Explain what a database index is in two sentences.",
    "Describe the water cycle briefly.",
    "Give me a friendly greeting for a support chat.",
    "Why do leaves change colour in autumn?",
]


@pytest.fixture(scope="module")
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture(scope="module")
def engine(runner: asyncio.Runner) -> Iterator[LocalEngine]:
    engine = LocalEngine.from_config(ModelConfig(name="smollm2-135m", engine="local"))
    runner.run(engine.start())
    yield engine
    runner.run(engine.aclose())


def request(question: str, **fields: Any) -> MessageCreateParams:
    body = {
        "model": "smollm2-135m",
        "max_tokens": 40,
        "temperature": 0.0,
        "messages": [{"role": "user", "content": question}],
        **fields,
    }
    return msgspec.convert(body, MessageCreateParams)


def run_all(
    runner: asyncio.Runner, engine: LocalEngine, requests: list[MessageCreateParams]
) -> list[Message]:
    async def gather() -> list[Message]:
        return list(await asyncio.gather(*(engine.create_message(r) for r in requests)))

    return runner.run(gather())


def text_of(message: Message) -> str:
    block = message.content[0]
    assert isinstance(block, TextBlock)
    return block.text


def prompt_tokens(engine: LocalEngine, params: MessageCreateParams) -> int:
    chat: list[dict[str, Any]] = []
    if isinstance(params.system, str):
        chat.append({"role": "system", "content": params.system})
    elif params.system is not None:
        chat.append({"role": "system", "content": "\n\n".join(b.text for b in params.system)})
    chat += [{"role": m.role, "content": m.content} for m in params.messages]
    ids = engine.tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True)
    return len(ids["input_ids"])


def encode(engine: LocalEngine, text: str) -> list[int]:
    ids: list[int] = engine.tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids


def tokens_until(engine: LocalEngine, full_text: str, stop: str) -> int:
    ids = encode(engine, full_text)
    return next(k for k in range(1, len(ids) + 1) if stop in engine.tokenizer.decode(ids[:k]))


def check_usage(engine: LocalEngine, params: MessageCreateParams, message: Message) -> None:
    assert message.usage.input_tokens == prompt_tokens(engine, params)
    text = text_of(message)
    if params.temperature != 0.0:
        # A sampled answer need not re-tokenize the way it was generated.
        assert message.stop_reason in ("max_tokens", "end_turn")
    elif message.stop_reason == "max_tokens":
        assert message.usage.output_tokens == params.max_tokens == len(encode(engine, text))
    elif message.stop_reason == "end_turn":
        assert message.usage.output_tokens == len(encode(engine, text)) + 1
    assert message.usage.output_tokens <= params.max_tokens
    assert message.id.startswith("msg_01")
    assert message.model == params.model


def stop_spanning_tokens(engine: LocalEngine, text: str) -> str:
    """A piece of ``text`` that starts inside one token and ends inside a later one."""
    ids = encode(engine, text)
    middle = len(engine.tokenizer.decode(ids[: len(ids) // 2]))
    return text[middle - 2 : middle + 4]


def test_mixed_concurrent_batch(runner: asyncio.Runner, engine: LocalEngine) -> None:
    references = run_all(runner, engine, [request(q) for q in QUESTIONS])
    full = [text_of(m) for m in references]
    stops = [stop_spanning_tokens(engine, text) for text in full]
    system = "You are a terse support agent. Answer in one sentence."
    mixed = (
        [
            request(q, stop_sequences=["@@never@@", stop])
            for q, stop in zip(QUESTIONS, stops, strict=True)
        ]
        + [request(q, max_tokens=n) for q, n in zip(QUESTIONS, [1, 3, 5, 8, 13, 21], strict=True)]
        + [request(q, system=system, max_tokens=30) for q in QUESTIONS[:4]]
        + [request(QUESTIONS[0], system=[{"type": "text", "text": system}], max_tokens=12)]
        + [request(q, temperature=1.0, top_p=0.9, top_k=40, max_tokens=24) for q in QUESTIONS[:3]]
    )
    assert len(mixed) >= 16
    results = run_all(runner, engine, mixed)
    for params, message in zip(mixed, results, strict=True):
        check_usage(engine, params, message)
        for stop in params.stop_sequences or ():
            assert stop not in text_of(message)
    for index, (text, stop) in enumerate(zip(full, stops, strict=True)):
        message = results[index]
        assert message.stop_reason == "stop_sequence"
        assert message.stop_sequence == stop
        assert text_of(message) == text[: text.index(stop)]
        assert message.usage.output_tokens == tokens_until(engine, text, stop)
    for index, text in enumerate(full):
        message = results[len(QUESTIONS) + index]
        assert message.stop_reason == "max_tokens"
        assert text.startswith(text_of(message))


def test_greedy_is_deterministic_and_batching_does_not_change_it(
    runner: asyncio.Runner, engine: LocalEngine
) -> None:
    probes = [request(q, max_tokens=24) for q in QUESTIONS[:3]]
    sequential = [runner.run(engine.create_message(p)) for p in probes]
    again = [runner.run(engine.create_message(p)) for p in probes]
    filler = [request(q * (1 + i % 3), max_tokens=16 + i) for i, q in enumerate(QUESTIONS * 2)]
    batched = run_all(runner, engine, filler[:7] + probes + filler[7:])[7:10]
    for first, second, together in zip(sequential, again, batched, strict=True):
        assert text_of(first) == text_of(second) == text_of(together)
        assert first.usage == together.usage


def test_end_turn_counts_the_end_of_turn_token(runner: asyncio.Runner, engine: LocalEngine) -> None:
    params = request("Reply with only the word yes.", max_tokens=30)
    message = runner.run(engine.create_message(params))
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    check_usage(engine, params, message)


def test_count_tokens_is_the_input_tokens_of_the_answer(
    runner: asyncio.Runner, engine: LocalEngine
) -> None:
    """Exact, from the same chat template: same-role turns merged, a prefill continued, and a
    prompt over the context window counted where create refuses it with the same number."""
    prompts: list[dict[str, Any]] = [
        {"messages": [{"role": "user", "content": QUESTIONS[0]}]},
        {
            "system": [{"type": "text", "text": "Be terse."}, {"type": "text", "text": "Be kind."}],
            "messages": [
                {"role": "user", "content": QUESTIONS[1]},
                {"role": "user", "content": [{"type": "text", "text": QUESTIONS[2]}]},
                {"role": "assistant", "content": "Sure. First,"},
            ],
        },
    ]
    for prompt in prompts:
        counted = runner.run(engine.count_tokens(counting(prompt)))
        message = runner.run(engine.create_message(request("", max_tokens=2, **prompt)))
        assert counted == message.usage.input_tokens > 0
    too_long = {"messages": [{"role": "user", "content": "word " * 9000}]}
    counted = runner.run(engine.count_tokens(counting(too_long)))
    with pytest.raises(ParamsError, match=rf"^prompt is too long: {counted} tokens > 8191 "):
        runner.run(engine.create_message(request("", **too_long)))
    with pytest.raises(ParamsError, match=r"^tools.0.input_schema: required"):
        runner.run(engine.count_tokens(counting({**prompts[0], "tools": [{"name": "t"}]})))
    with_tools = {
        **prompts[0],
        "tools": [{"name": "lookup", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any"},
    }
    counted = runner.run(engine.count_tokens(counting(with_tools)))
    message = runner.run(engine.create_message(request("", max_tokens=2, **with_tools)))
    assert counted == message.usage.input_tokens > prompt_tokens(engine, request("", **prompts[0]))


def counting(prompt: dict[str, Any]) -> MessageCountTokensParams:
    return msgspec.convert({"model": "smollm2-135m", **prompt}, MessageCountTokensParams)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": "AA==",
                                },
                            },
                        ],
                    }
                ]
            },
            "messages.0.content.0: content blocks of type 'image' are not supported",
        ),
        (
            {
                "tools": [
                    {"name": "lookup", "input_schema": {"type": "object", "if": {"type": "object"}}}
                ]
            },
            'tools.0.input_schema: cannot be enforced: Unimplemented keys: ["if"]',
        ),
        (
            {"output_config": {"format": {"type": "json_schema", "schema": {"type": "strin"}}}},
            "output_config.format.schema: cannot be enforced: Invalid type: strin",
        ),
        ({"messages": [{"role": "user", "content": "word " * 9000}]}, "prompt is too long: "),
    ],
)
def test_requests_the_model_cannot_take(
    runner: asyncio.Runner, engine: LocalEngine, fields: dict[str, Any], error: str
) -> None:
    with pytest.raises(ParamsError) as caught:
        runner.run(engine.create_message(request("hi", **fields)))
    assert caught.value.error_type == "invalid_request_error"
    assert caught.value.message.startswith(error)
    if error.startswith("prompt"):
        assert caught.value.message.endswith("tokens > 8191 maximum")


def test_its_output_cap_is_its_context_window(engine: LocalEngine) -> None:
    """Unless a config sets one, ``max_tokens`` is capped by nothing but the context window:
    a longer answer stops there (``model_context_window_exceeded``), as the API's models do."""
    assert engine.max_output_tokens == 8191 and engine.max_input_tokens == 8192


def test_a_second_start_in_a_fresh_process_hits_the_cache(engine: LocalEngine) -> None:
    assert engine.loaded is not None  # the module's engine has written the cache by now
    script = (
        "import asyncio, time\n"
        "from batchyard.config import ModelConfig\n"
        "from batchyard.engines.local import LocalEngine\n"
        "engine = LocalEngine.from_config(ModelConfig(name='smollm2-135m', engine='local'))\n"
        "started = time.perf_counter()\n"
        "asyncio.run(engine.start())\n"
        "print(time.perf_counter() - started, engine.loaded.cache_hit)\n"
        "asyncio.run(engine.aclose())\n"
    )
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    elapsed, cache_hit = done.stdout.split()
    assert cache_hit == "True"
    assert float(elapsed) < 10, f"engine start took {elapsed} s"
    assert time.perf_counter() - began < 30  # imports included


def test_max_tokens_zero_generates_nothing(runner: asyncio.Runner, engine: LocalEngine) -> None:
    """As the API does: no output token, an empty answer, the prompt still counted."""
    params = request(QUESTIONS[0], max_tokens=0)
    [message] = run_all(runner, engine, [params])
    assert message.content == [] and message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 0
    assert message.usage.input_tokens == prompt_tokens(engine, params)


def test_the_cpu_kernels_keep_the_reference_answers(
    runner: asyncio.Runner, engine: LocalEngine
) -> None:
    """The module's engine runs with ``kernels = "auto"`` (decode attention, and linear layers
    on oneDNN where that is faster here); an engine with transformers' own layers gives the
    same greedy answers, in a batch and alone."""
    probes = [request(q * (1 + i % 2), max_tokens=32) for i, q in enumerate(QUESTIONS)]
    tuned = run_all(runner, engine, probes)
    reference = LocalEngine.from_config(
        ModelConfig(name="smollm2-135m", engine="local", options={"kernels": "reference"})
    )
    runner.run(reference.start())
    try:
        plain = run_all(runner, reference, probes)
        alone = runner.run(reference.create_message(probes[0]))
    finally:
        runner.run(reference.aclose())
    assert [text_of(m) for m in tuned] == [text_of(m) for m in plain]
    assert text_of(alone) == text_of(tuned[0])
    assert [m.usage for m in tuned] == [m.usage for m in plain]


TICKETS = [
    "I was charged twice for my subscription this month.",
    "The app crashes every time I open the settings page.",
    "I cannot log in after changing my email address.",
    "Please refund the order I cancelled last week.",
    "Exporting a report gives me an empty file.",
    "How do I add a second user to my account?",
    "My invoice shows the wrong company name.",
    "The search box returns an error 500.",
    "Two-factor codes never arrive on my phone.",
    "I need a copy of last year's receipts for my accountant.",
    "Notifications show up twice on the desktop client.",
    "Please delete my account and all of my data.",
    "The discount code from your newsletter was rejected at checkout.",
    "Uploading a profile photo spins forever.",
    "My team members cannot see the shared dashboard.",
    "Why did my plan renew at a higher price?",
]
CATEGORY = {
    "type": "object",
    "properties": {
        "category": {"enum": ["billing", "bug", "account"]},
        "urgent": {"type": "boolean"},
        "summary": {"type": "string", "maxLength": 60},
    },
    "required": ["category", "urgent", "summary"],
}
FILE_TICKET = {
    "name": "file_ticket",
    "description": "File a support ticket in the tracker.",
    "input_schema": {
        "type": "object",
        "properties": {
            "team": {"enum": ["payments", "engineering", "identity"]},
            "priority": {"type": "integer", "minimum": 1, "maximum": 4},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        },
        "required": ["team", "priority"],
    },
}
NOTIFY = {
    "name": "notify_customer",
    "description": "Send the customer a short message.",
    "input_schema": {
        "type": "object",
        "properties": {"message": {"type": "string", "maxLength": 80}},
        "required": ["message"],
    },
}


def test_formats_and_forced_tool_calls_are_schema_valid_in_one_mixed_batch(
    runner: asyncio.Runner, engine: LocalEngine
) -> None:
    """16 rows under a JSON-schema format, 16 forced tool calls (one tool, or any of two),
    sampled and greedy, sharing the batch with unconstrained rows: every constrained answer
    parses and is valid against its schema; the free rows answer as they do alone.
    ``max_tokens`` leaves room for the longest strings the schemas allow (one character a
    token at worst): an answer cut short is ``max_tokens``, as the API's would be."""
    jsonschema = pytest.importorskip("jsonschema")
    prompts = TICKETS
    assert len(set(prompts)) == 16
    formatted = [
        request(
            ticket,
            max_tokens=160,
            temperature=0.0 if index % 2 else 0.8,
            output_config={"format": {"type": "json_schema", "schema": CATEGORY}},
        )
        for index, ticket in enumerate(prompts)
    ]
    forced = [
        request(
            ticket,
            max_tokens=160,
            tools=[FILE_TICKET, NOTIFY],
            tool_choice={"type": "tool", "name": "file_ticket"} if index % 2 else {"type": "any"},
        )
        for index, ticket in enumerate(prompts)
    ]
    free = [request(q, max_tokens=24) for q in QUESTIONS[:4]]
    results = run_all(runner, engine, formatted + free[:2] + forced + free[2:])
    answers = results[:16] + results[18:34]
    for message in answers[:16]:
        assert message.stop_reason == "end_turn", message
        jsonschema.validate(json.loads(text_of(message)), CATEGORY)
    schemas = {tool["name"]: tool["input_schema"] for tool in (FILE_TICKET, NOTIFY)}
    for index, message in enumerate(answers[16:]):
        assert message.stop_reason == "tool_use", message
        [call] = message.content
        assert isinstance(call, ToolUseBlock) and call.id.startswith("toolu_01")
        if index % 2:
            assert call.name == "file_ticket"
        jsonschema.validate(call.input, schemas[call.name])
    alone = run_all(runner, engine, free)
    assert [text_of(m) for m in alone] == [text_of(m) for m in results[16:18] + results[34:]]


def test_auto_tool_choice_lets_the_model_answer_in_text_or_call(
    runner: asyncio.Runner, engine: LocalEngine
) -> None:
    """Under ``auto`` the answer is text, or text then one schema-valid call (``tool_use``),
    or a call cut short by ``max_tokens``."""
    jsonschema = pytest.importorskip("jsonschema")
    params = [
        request(ticket, max_tokens=80, temperature=0.9, tools=[FILE_TICKET]) for ticket in TICKETS
    ]
    for message in run_all(runner, engine, params):
        calls = [block for block in message.content if isinstance(block, ToolUseBlock)]
        if message.stop_reason == "tool_use":
            [call] = calls
            jsonschema.validate(call.input, FILE_TICKET["input_schema"])
        elif message.stop_reason == "max_tokens" and calls:
            # Cut inside its call: the call comes back as far as it got, as the API's does.
            [call] = calls
            assert call.name == "file_ticket"
        else:
            assert not calls and "<" not in text_of(message)


def test_what_the_review_broke_holds(runner: asyncio.Runner, engine: LocalEngine) -> None:
    """Cases an adversarial review found: a tool whose input schema has ``$defs`` (a nested
    pydantic model) under a forced call; ``required`` beyond ``properties``; a format whose
    JSON may contain the tool-call tag beside tools under ``auto``; a forced call cut by
    ``max_tokens`` (still a ``tool_use`` block); a prefill with a format (refused)."""
    jsonschema = pytest.importorskip("jsonschema")
    nested = {
        "name": "save_address",
        "input_schema": {
            "type": "object",
            "properties": {"home": {"$ref": "#/$defs/Address"}},
            "required": ["home"],
            "$defs": {
                "Address": {
                    "type": "object",
                    "properties": {"street": {"type": "string", "maxLength": 30}},
                    "required": ["street"],
                }
            },
        },
    }
    loose = {
        "name": "tag",
        "input_schema": {
            "type": "object",
            "properties": {"a": {"type": "string", "maxLength": 10}},
            "required": ["a", "b"],
        },
    }
    tagged = {
        "type": "object",
        "properties": {"a": {"const": "<tool_call>"}},
        "required": ["a"],
    }
    asks = [
        request(
            "Save my address: 1 Main St.",
            max_tokens=80,
            tools=[nested, loose],
            tool_choice={"type": "any"},
        ),
        request(
            "Tag it.", max_tokens=80, tools=[loose], tool_choice={"type": "tool", "name": "tag"}
        ),
        request(
            "Reply.",
            max_tokens=40,
            tools=[loose],
            output_config={"format": {"type": "json_schema", "schema": tagged}},
        ),
        request("Save it.", max_tokens=3, tools=[nested], tool_choice={"type": "any"}),
    ]
    saved, tag, reply, cut = run_all(runner, engine, asks)
    for message in (saved, tag):
        assert message.stop_reason == "tool_use", message
        [call] = message.content
        assert isinstance(call, ToolUseBlock)
        schema = {"save_address": nested, "tag": loose}[call.name]["input_schema"]
        jsonschema.validate(call.input, schema)
    assert reply.stop_reason == "end_turn" and json.loads(text_of(reply)) == {"a": "<tool_call>"}
    [partial] = cut.content
    assert cut.stop_reason == "max_tokens" and isinstance(partial, ToolUseBlock)
    assert partial.name == "save_address" and partial.input == {}
    prefilled = {
        "messages": [{"role": "user", "content": "Reply."}, {"role": "assistant", "content": "{"}],
        "output_config": {"format": {"type": "json_schema", "schema": tagged}},
    }
    with pytest.raises(ParamsError, match=r"^messages.1: a final assistant turn \(prefill\)"):
        runner.run(
            engine.create_message(
                msgspec.convert(
                    {"model": "smollm2-135m", "max_tokens": 5, **prefilled}, MessageCreateParams
                )
            )
        )
