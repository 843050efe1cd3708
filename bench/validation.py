"""Benchmark: what checking a Messages body against the SDK's types costs per request.

Every batch request is validated once, by the worker, before its engine runs it
(``decode_params``: the SDK's shape from ``protocol/sdk_params.py``, then the lenient structs
engines read, then the API's own rules). Prints, for the same bodies in one run:

* the **floor**: ``json.loads`` of each body (what any Python server pays to look at it);
* **reading only**: msgspec decoding into the structs engines read (all a worker did before
  the SDK check);
* **full validation**: ``decode_params``, with the ratio to reading only;
* the projected cost for a 100,000-request batch, and its share of that batch's processing
  time measured end to end by ``bench/ingest_and_queue.py`` on the zero-latency simulated
  engine (pass ``--processing-seconds`` from a run on the same machine).

Two body mixes: the small requests of the ingest benchmark, and a realistic pipeline mix
(system prompt, multi-turn history with blocks, a tool definition, stop sequences).

Usage: ``python bench/validation.py [--rounds N] [--processing-seconds S]``
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable

import msgspec

from batchyard.protocol.messages import MessageCreateParams, decode_params

BATCH = 100_000


def small_bodies() -> list[bytes]:
    """The ingest benchmark's requests: one short user turn each."""
    return [
        json.dumps(
            {
                "model": "sim",
                "max_tokens": 16,
                "messages": [{"role": "user", "content": f"Classify ticket {n}: printer on fire"}],
            }
        ).encode()
        for n in range(1000)
    ]


def pipeline_bodies() -> list[bytes]:
    """What a nightly pipeline sends: a system prompt, a few turns, a tool, settings."""
    article = "The quarterly report shows steady growth across regions. " * 12
    return [
        json.dumps(
            {
                "model": "sim",
                "max_tokens": 512,
                "system": [
                    {
                        "type": "text",
                        "text": "You summarise articles for a newsletter.",
                        "cache_control": {"type": "ephemeral"},
                    }
                ],
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": f"{article} #{n}"}]},
                    {"role": "assistant", "content": "Here is a first summary."},
                    {
                        "role": "user",
                        "content": [{"type": "text", "text": "Shorter, and tag the topic."}],
                    },
                ],
                "tools": [
                    {
                        "name": "tag_topic",
                        "description": "Record the article's topic.",
                        "input_schema": {
                            "type": "object",
                            "properties": {"topic": {"type": "string"}},
                            "required": ["topic"],
                        },
                    }
                ],
                "tool_choice": {"type": "auto"},
                "stop_sequences": ["\n\nHuman:"],
                "temperature": 0.2,
                "metadata": {"user_id": "pipeline-7"},
            }
        ).encode()
        for n in range(1000)
    ]


def per_request_us(bodies: list[bytes], check: Callable[[bytes], object], rounds: int) -> float:
    """The best of ``rounds`` passes over ``bodies``, in microseconds per body."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for body in bodies:
            check(body)
        best = min(best, time.perf_counter() - start)
    return best / len(bodies) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--processing-seconds",
        type=float,
        default=5.44,
        help="a 100k batch's processing time on this machine (bench/ingest_and_queue.py)",
    )
    args = parser.parse_args()
    reader = msgspec.json.Decoder(MessageCreateParams)
    print(f"python {sys.version.split()[0]} on {platform.machine()}, {platform.platform()}")
    print(
        f"{'mix':<10} {'json.loads':>11} {'reading':>9} {'full':>8} {'full/read':>10} "
        f"{'100k':>7} {'share':>7}"
    )
    for name, bodies in (("small", small_bodies()), ("pipeline", pipeline_bodies())):
        size = sum(len(b) for b in bodies) / len(bodies)
        floor = per_request_us(bodies, json.loads, args.rounds)
        reading = per_request_us(bodies, reader.decode, args.rounds)
        full = per_request_us(bodies, lambda body: decode_params(body, in_batch=True), args.rounds)
        batch_seconds = full * BATCH / 1e6
        share = batch_seconds / args.processing_seconds
        print(
            f"{name:<10} {floor:>9.1f}us {reading:>7.1f}us {full:>6.1f}us {full / reading:>9.2f}x "
            f"{batch_seconds:>6.2f}s {share:>6.1%}   ({size:.0f} bytes/body)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
