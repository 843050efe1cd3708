"""Throughput of the local engine: the same 64 prompts one at a time, all at once, and as a
batch through the product.

Run: ``HF_HUB_OFFLINE=1 python bench/local_engine.py [--prompts 64] [--max-tokens 48]``.
The first two passes go through ``LocalEngine.create_message`` (sequential = awaited one
after another, batched = all gathered at once), at temperature 0, so both produce the same
text. The product pass sends the same requests as one Message Batch to a real
``batchyard serve`` on loopback (SQLite, its own worker and model) and times create →
``ended``: what a user gets, beside the engine's own figure. The batched and product passes
alternate (``--rounds``, each idle while the other runs) and the best of each is compared.
Load time is measured cold (a fresh converted-weights cache) and warm (the cache reused).

Beside the batched pass: the same pass with ``kernels = "reference"`` (transformers' SDPA and
a float32 output layer, the engine without its CPU kernels) and how many greedy answers stay
identical; the achieved FLOP rate against this machine's matmul peak measured in the same
run; with ``--bfloat16``, the batched pass with bfloat16 weights (faster where the CPU has
bfloat16 instructions, but it changes answers); and two constrained passes (an enum schema, a
small object schema: the answers checked against it) beside the same prompts unconstrained
with ``max_tokens`` set to the constrained answers' mean length, so their ratio is what the
grammar masks cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import torch

from batchyard.config import ModelConfig
from batchyard.engines.local import LocalEngine
from batchyard.engines.local.packed import PackedLinear
from batchyard.engines.local.prompt import instructions
from batchyard.engines.local.timing import best_seconds
from batchyard.protocol.messages import Message, MessageCreateParams, MessageParam
from batchyard.protocol.structured import answer_shape

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from harness import Api, ServerProcess, add_key

_TOPICS = [
    "my invoice shows a double charge",
    "the mobile app crashes on login",
    "I cannot reset my password",
    "my package arrived damaged",
    "the CSV export is missing columns",
    "I was billed after cancelling",
    "the dashboard loads very slowly",
    "two-factor codes never arrive",
    "I need to change my shipping address",
    "the API returns 500 errors intermittently",
    "my discount code was rejected",
    "I want a refund for a late delivery",
    "the search results are empty",
    "my account was locked after travel",
    "the printer driver fails to install",
    "notifications arrive twice",
]
_CUSTOMERS = ["Ana", "Bilal", "Chen", "Dara"]


def ticket_prompts(count: int, max_tokens: int) -> list[MessageCreateParams]:
    """Support-ticket-like requests of varied length (55-90 prompt tokens)."""
    requests = []
    for index in range(count):
        topic = _TOPICS[index % len(_TOPICS)]
        customer = _CUSTOMERS[(index // len(_TOPICS)) % len(_CUSTOMERS)]
        detail = "I tried restarting and clearing the cache, but nothing helps. " * (index % 3)
        text = (
            f"Support ticket #{1000 + index} from {customer}: Hello, {topic}. {detail}"
            "Please reply to the customer in two sentences."
        )
        requests.append(
            MessageCreateParams(
                model="smollm2-135m",
                max_tokens=max_tokens,
                temperature=0.0,
                messages=[MessageParam(role="user", content=text)],
            )
        )
    return requests


async def timed_start(cache_dir: str, **options: str) -> tuple[LocalEngine, float]:
    engine = LocalEngine.from_config(
        ModelConfig(
            name="smollm2-135m", engine="local", options={"cache_dir": cache_dir, **options}
        )
    )
    started = time.perf_counter()
    await engine.start()
    return engine, time.perf_counter() - started


class Pass(msgspec.Struct):
    """One timed pass over the requests through ``LocalEngine.create_message``."""

    messages: list[Message]
    seconds: float

    @property
    def rate(self) -> float:
        return _output_tokens(self.messages) / self.seconds

    def same_as(self, other: Pass) -> int:
        return sum(
            _text(a) == _text(b) for a, b in zip(self.messages, other.messages, strict=False)
        )


async def batched_pass(engine: LocalEngine, requests: list[MessageCreateParams]) -> Pass:
    started = time.perf_counter()
    messages = await asyncio.gather(*(engine.create_message(r) for r in requests))
    return Pass(list(messages), time.perf_counter() - started)


#: The constrained passes: one answer shape each, over the same ticket prompts.
_SCHEMAS: list[tuple[str, dict[str, Any]]] = [
    (
        "enum",
        {
            "type": "object",
            "properties": {"category": {"enum": ["billing", "bug", "account"]}},
            "required": ["category"],
        },
    ),
    (
        "small object",
        {
            "type": "object",
            "properties": {
                "category": {"enum": ["billing", "bug", "account"]},
                "urgent": {"type": "boolean"},
                "reply": {"type": "string", "maxLength": 60},
            },
            "required": ["category", "urgent", "reply"],
        },
    ),
]


class StructuredPair(msgspec.Struct):
    name: str
    constrained: Pass
    #: The same prompts unconstrained (the schema still described in the system prompt),
    #: with ``max_tokens`` the constrained answers' mean length: the same work but the
    #: grammar, so the ratio is what the masks cost.
    free: Pass
    #: Answers that parse and are valid against the schema.
    valid: int


async def structured_pair(
    engine: LocalEngine, requests: list[MessageCreateParams], name: str, schema: dict[str, Any]
) -> StructuredPair:
    shaped = [
        msgspec.structs.replace(
            request, output_config={"format": {"type": "json_schema", "schema": schema}}
        )
        for request in requests
    ]
    constrained = await batched_pass(engine, shaped)
    valid = 0
    for message in constrained.messages:
        try:
            jsonschema.validate(json.loads(_text(message)), schema)
            valid += 1
        except (ValueError, jsonschema.ValidationError):
            pass
    mean = round(_output_tokens(constrained.messages) / len(requests))
    described = instructions(answer_shape(shaped[0]))
    free = await batched_pass(
        engine,
        [
            msgspec.structs.replace(request, max_tokens=mean, system=described)
            for request in requests
        ],
    )
    return StructuredPair(name, constrained, free, valid)


async def engine_with(cache_dir: str, **options: str) -> LocalEngine:
    engine, _ = await timed_start(cache_dir, **options)
    await engine.create_message(ticket_prompts(1, 8)[0])  # first-call kernel setup
    return engine


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument(
        "--sequential",
        type=int,
        default=0,
        help="prompts for the sequential pass (0 = all); its rate does not depend on how many",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="the served model's concurrency in the product pass (default: the engine's own, "
        "its max_batch_size of 64)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="alternating rounds of the batched engine pass and the product pass (best of)",
    )
    parser.add_argument(
        "--bfloat16",
        action="store_true",
        help="also run the batched pass with dtype = bfloat16 (opt-in: it changes answers)",
    )
    args = parser.parse_args()
    requests = ticket_prompts(args.prompts, args.max_tokens)
    peaks = [machine_peak()]
    with tempfile.TemporaryDirectory() as cache_dir:
        engine, cold = await timed_start(cache_dir)
        await engine.aclose()
        engine, warm = await timed_start(cache_dir)
        print(f"load: cold (convert GGUF) {cold:.1f} s, cache hit {warm:.1f} s")
        config = engine.loaded.model.config if engine.loaded else None
        await engine.create_message(requests[0])  # warm-up: first-call kernel setup

        sequential_requests = requests[: args.sequential or len(requests)]
        started = time.perf_counter()
        sequential = Pass(
            [await engine.create_message(request) for request in sequential_requests],
            time.perf_counter() - started,
        )
        # The engine here and the same requests as a batch through a server, alternating,
        # so drift in what else the machine runs falls on both; the best round of each is
        # compared (other work only ever adds time). Each waits while the other runs.
        rounds: list[tuple[Pass, ProductRun]] = []
        server = ProductServer(cache_dir, args.concurrency, requests)
        await asyncio.to_thread(server.start)
        try:
            for index in range(args.rounds):
                engine_round = await batched_pass(engine, requests)
                product_round = await asyncio.to_thread(server.run_batch, f"round{index}-")
                rounds.append((engine_round, product_round))
        finally:
            server.stop()
        structured = [
            await structured_pair(engine, requests, name, schema) for name, schema in _SCHEMAS
        ]
        await engine.aclose()
        batched = min((engine_round for engine_round, _ in rounds), key=lambda p: p.seconds)
        product = min((product_round for _, product_round in rounds), key=lambda p: p.seconds)
        # The same pass with transformers' own layers, attention and float32 output layer,
        # the engine before its CPU kernels: the speed-up, and that answers did not change.
        reference_engine = await engine_with(cache_dir, kernels="reference")
        reference = await batched_pass(reference_engine, requests)
        await reference_engine.aclose()
        bfloat16 = None
        if args.bfloat16:
            bfloat16_engine = await engine_with(cache_dir, dtype="bfloat16")
            bfloat16 = await batched_pass(bfloat16_engine, requests)
            await bfloat16_engine.aclose()
    peaks.append(machine_peak())
    peak = {kind: max(p[kind] for p in peaks) for kind in peaks[0]}

    print(
        f"sequential: {len(sequential.messages)} requests, "
        f"{_output_tokens(sequential.messages)} output tokens in {sequential.seconds:.1f} s "
        f"= {sequential.rate:.1f} tok/s"
    )
    print(
        f"batched:    {len(batched.messages)} requests, {_output_tokens(batched.messages)} "
        f"output tokens in {batched.seconds:.1f} s = {batched.rate:.1f} tok/s"
    )
    print(
        f"ratio: {batched.rate / sequential.rate:.1f}x; identical greedy answers: "
        f"{sequential.same_as(batched)}/{len(sequential.messages)}; "
        f"torch threads: {torch.get_num_threads()}"
    )
    assert config is not None
    flops = model_flops(config, batched.messages)
    print(
        f"FLOP rate:  {flops / 1e12:.2f} TFLOP of model work in {batched.seconds:.1f} s = "
        f"{flops / batched.seconds / 1e9:.0f} GFLOP/s; this machine's matmul peak (best "
        f"measured at start and end): float32 {peak['float32']:.0f} GFLOP/s "
        f"({flops / batched.seconds / 1e9 / peak['float32']:.0%} of it), "
        f"bfloat16 {peak['bfloat16']:.0f} GFLOP/s"
    )
    print(
        f"reference kernels (transformers' SDPA, float32 output layer): {reference.rate:.1f} "
        f"tok/s; batched / reference: {batched.rate / reference.rate:.2f}; identical greedy "
        f"answers: {batched.same_as(reference)}/{len(requests)} (goal >= 60/64)"
    )
    if bfloat16 is not None:
        print(
            f"dtype bfloat16 (opt-in): {bfloat16.rate:.1f} tok/s; identical greedy answers to "
            f"float32: {bfloat16.same_as(reference)}/{len(requests)}"
        )
    for pair in structured:
        print(
            f"structured ({pair.name}): {pair.constrained.rate:.1f} tok/s, "
            f"{_output_tokens(pair.constrained.messages) / len(requests):.1f} tokens per "
            f"answer, {pair.valid}/{len(requests)} valid; unconstrained at that max_tokens: "
            f"{pair.free.rate:.1f} tok/s; ratio {pair.constrained.rate / pair.free.rate:.2f} "
            "(goal >= 0.8)"
        )
    for index, (engine_round, product_round) in enumerate(rounds):
        print(
            f"round {index + 1}: engine {engine_round.rate:.1f} tok/s, product "
            f"{product_round.rate:.1f} tok/s"
        )
    same_texts = sum(
        product.texts.get(f"{product.prefix}{index}") == _text(message)
        for index, message in enumerate(batched.messages)
    )
    print(
        f"product:    {len(requests)} requests as one batch over HTTP, {product.output_tokens} "
        f"output tokens in {product.seconds:.1f} s = {product.rate:.1f} tok/s "
        f"(concurrency {args.concurrency or 'the engine default'}; best of {len(rounds)})"
    )
    print(
        f"product / batched engine: {product.rate / batched.rate:.2f} (goal >= 0.9); "
        f"answers identical to the batched pass: {same_texts}/{len(requests)}"
    )


def model_flops(config: Any, messages: list[Message]) -> float:
    """Multiply-adds x 2 that the requests need of the model: every prompt token through the
    layers, every answer token through the layers and the output layer, attention over the
    tokens before each (what an engine without prefix sharing would compute)."""
    hidden, layers = config.hidden_size, config.num_hidden_layers
    head_dim = getattr(config, "head_dim", None) or hidden // config.num_attention_heads
    query, key_value = config.num_attention_heads * head_dim, config.num_key_value_heads * head_dim
    per_layer = (
        hidden * (query + 2 * key_value) + query * hidden + 3 * hidden * config.intermediate_size
    )
    layer_flops, head_flops = 2 * layers * per_layer, 2 * hidden * config.vocab_size
    attention_per_position = 4 * layers * query
    total = 0.0
    for message in messages:
        prompt, answer = message.usage.input_tokens, message.usage.output_tokens
        tokens = prompt + answer
        total += tokens * layer_flops + answer * head_flops
        total += attention_per_position * tokens * (tokens - 1) / 2
    return total


def machine_peak() -> dict[str, float]:
    """GFLOP/s of a 2048 x 2048 x 2048 matmul, best of five, on torch's threads: float32
    through MKL (``torch.mm``) and through oneDNN with a packed weight (what the engine's
    layers use; faster on AMD CPUs), bfloat16 through ``torch.mm``. The ceiling the
    engine's figure is read against."""
    size = 2048
    a, b = torch.randn(size, size), torch.randn(size, size)
    packed = PackedLinear(torch.nn.Linear(size, size, bias=False))
    bf_a, bf_b = a.to(torch.bfloat16), b.to(torch.bfloat16)
    cpu = torch.device("cpu")
    flops = 2 * size**3 / 1e9
    return {
        "float32": flops
        / min(best_seconds(lambda: a @ b, cpu), best_seconds(lambda: packed(a), cpu)),
        "bfloat16": flops / best_seconds(lambda: bf_a @ bf_b, cpu),
    }


class ProductRun(msgspec.Struct):
    prefix: str
    seconds: float
    output_tokens: int
    texts: dict[str, str]

    @property
    def rate(self) -> float:
        return self.output_tokens / self.seconds


class ProductServer:
    """A ``batchyard serve`` on loopback (SQLite, its own worker and model) serving the
    bench's model, warmed by one sync call and a batch of 8, as the engine pass follows a
    warm-up call and the sequential pass."""

    def __init__(
        self, cache_dir: str, concurrency: int | None, requests: list[MessageCreateParams]
    ) -> None:
        self._config = f'''
[[models]]
name = "smollm2-135m"
engine = "local"
cache_dir = "{cache_dir}"
''' + (f"concurrency = {concurrency}\n" if concurrency is not None else "")
        self._requests = requests
        self._workdir = tempfile.TemporaryDirectory()
        self._server: ServerProcess | None = None
        self._api: Api | None = None

    def start(self) -> None:
        db_url = f"sqlite:///{self._workdir.name}/bench.sqlite"
        self._server = ServerProcess(Path(self._workdir.name), db_url, self._config).start()
        self._api = Api(self._server.base_url, add_key(db_url, "bench"))
        warm = msgspec.to_builtins(self._requests[0])
        assert self._api.http.post("/v1/messages", json=warm).status_code == 200
        self._run(self._requests[:8], "warm-up-")

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        self._workdir.cleanup()

    def run_batch(self, prefix: str) -> ProductRun:
        """The requests as one batch, timed from create to ``ended``."""
        return self._run(self._requests, prefix)

    def _run(self, requests: list[MessageCreateParams], prefix: str) -> ProductRun:
        assert self._api is not None
        started = time.perf_counter()
        batch = self._api.create(
            [
                {"custom_id": f"{prefix}{index}", "params": msgspec.to_builtins(request)}
                for index, request in enumerate(requests)
            ]
        )
        self._api.wait_ended(batch["id"], timeout=1800)
        seconds = time.perf_counter() - started
        lines = self._api.results(batch["id"])
        succeeded = [line for line in lines if line["result"]["type"] == "succeeded"]
        assert len(succeeded) == len(requests), lines[:3]
        return ProductRun(
            prefix=prefix,
            seconds=seconds,
            output_tokens=sum(
                line["result"]["message"]["usage"]["output_tokens"] for line in succeeded
            ),
            texts={
                line["custom_id"]: "".join(
                    block["text"]
                    for block in line["result"]["message"]["content"]
                    if block["type"] == "text"
                )
                for line in succeeded
            },
        )


def _text(message: Message) -> str:
    return "".join(getattr(block, "text", "") for block in message.content)


def _output_tokens(messages: list[Message]) -> int:
    return sum(message.usage.output_tokens for message in messages)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    asyncio.run(main())
