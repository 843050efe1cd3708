"""Benchmark: how close to a rate-limited upstream's cap do its clients get?

An upstream ``batchyard serve`` whose simulated model has ``rate_limit_rpm`` (default 3,000)
and 0.2-2 s latency stands in for a provider's API. Against it, in one run:

* **tutorial loop**: the loop of sync ``client.messages.create`` calls that Anthropic's batch
  tutorial starts from (one call at a time, the SDK's own retries on 429);
* **asyncio + semaphore**: ``AsyncAnthropic`` with a semaphore of ``--semaphore`` calls in
  flight, the SDK retrying 429s;
* **batchyard, headers only**: a relaying batchyard (``engine = "anthropic"``) with no limit
  configured, learning it from the upstream's ``anthropic-ratelimit-*`` headers;
* **batchyard, rpm configured**: the same with ``rpm`` set to the cap.

Each prints its achieved rate as a fraction of the cap (answered calls per minute from the
first call to the last answer), the share of upstream calls answered 429 (counted by the
client, or for batchyard from its answers' headers in the upstream's own log: the upstream
counts them), and lost requests (sent but with no result). Goal for batchyard: at least 95%
of the cap, at most 1% 429s, none lost. The two client loops are bounded by ``--client-seconds``
(they are the baseline, not the subject) and their rate is measured over what they did.

Usage: ``python bench/upstream_saturation.py [--requests 3000] [--rpm 3000]``
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anthropic
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from harness import Api, ServerProcess, add_key

UPSTREAM = """
poll_interval_seconds = 0.2
[[models]]
name = "sim"
engine = "simulated"
rate_limit_rpm = {rpm}
latency_ms_min = 200
latency_ms_max = 2000
output_tokens = 16
concurrency = 8
"""

RELAY = """
poll_interval_seconds = 0.2
retry_base_seconds = 1.0
max_attempts = 8
claim_size = 1000
[[models]]
name = "relayed"
engine = "anthropic"
base_url = "{base_url}"
api_key = "{key}"
upstream_model = "sim"
concurrency = {concurrency}
max_connections = {concurrency}
{limits}
"""


@dataclass
class Result:
    name: str
    answered: int
    sent: int
    refused: int
    seconds: float
    rpm: int

    def line(self) -> str:
        rate = self.answered / self.seconds * 60 if self.seconds else 0.0
        share_429 = self.refused / (self.answered + self.refused) if self.answered else 0.0
        return (
            f"{self.name:<28} {self.answered:>6} answered in {self.seconds:6.1f} s  "
            f"{rate:7.0f} rpm = {rate / self.rpm:6.1%} of cap  "
            f"429s {self.refused:>5} ({share_429:5.2%})  lost {self.sent - self.answered}"
        )


def _counting_hooks(counter: list[int]) -> dict[str, list[Callable[[httpx.Response], None]]]:
    def count(response: httpx.Response) -> None:
        if response.status_code == 429:
            counter[0] += 1

    return {"response": [count]}


def _body(n: int) -> dict[str, object]:
    return {
        "model": "sim",
        "max_tokens": 32,
        "messages": [{"role": "user", "content": f"ticket {n}: I was charged twice"}],
    }


def tutorial_loop(base_url: str, key: str, rpm: int, seconds: float) -> Result:
    refused = [0]
    http = anthropic.DefaultHttpxClient(event_hooks=_counting_hooks(refused))
    client = anthropic.Anthropic(api_key=key, base_url=base_url, http_client=http)
    answered = sent = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        sent += 1
        client.messages.create(**_body(sent))  # type: ignore[call-overload]
        answered += 1
    return Result(
        "tutorial loop (sync)", answered, sent, refused[0], time.monotonic() - started, rpm
    )


async def semaphore_client(
    base_url: str, key: str, rpm: int, requests: int, limit: int, seconds: float
) -> Result:
    refused = [0]

    async def count(response: httpx.Response) -> None:
        if response.status_code == 429:
            refused[0] += 1

    http = anthropic.DefaultAsyncHttpxClient(event_hooks={"response": [count]})
    client = anthropic.AsyncAnthropic(
        api_key=key, base_url=base_url, http_client=http, max_retries=10
    )
    semaphore = asyncio.Semaphore(limit)
    answered = 0
    lost = 0
    started = time.monotonic()

    async def one(n: int) -> None:
        nonlocal answered, lost
        async with semaphore:
            if time.monotonic() - started > seconds:
                return
            try:
                await client.messages.create(**_body(n))  # type: ignore[call-overload]
                answered += 1
            except anthropic.APIError:
                lost += 1

    await asyncio.gather(*(one(n) for n in range(requests)))
    elapsed = time.monotonic() - started
    await client.close()
    return Result(
        f"asyncio + semaphore({limit})", answered, answered + lost, refused[0], elapsed, rpm
    )


def relay_run(
    workdir: Path, upstream: ServerProcess, name: str, requests: int, rpm: int, limits: str
) -> Result:
    key = add_key(upstream.db_url, name.replace(" ", "-"))
    config = RELAY.format(base_url=upstream.base_url, key=key, concurrency=256, limits=limits)
    relay_dir = workdir / name.replace(" ", "-").replace(",", "")
    relay_dir.mkdir()
    relay = ServerProcess(relay_dir, f"sqlite:///{relay_dir / 'relay.db'}", config).start()
    try:
        before = upstream.answered(429)
        api = Api(relay.base_url, add_key(relay.db_url, "bench"))
        requests_body = [
            {"custom_id": f"r{n:05d}", "params": {**_body(n), "model": "relayed"}}
            for n in range(requests)
        ]
        started = time.monotonic()
        batch = api.create(requests_body)
        ended = api.wait_ended(batch["id"], timeout=requests / rpm * 60 * 4 + 120)
        elapsed = time.monotonic() - started
        counts = ended["request_counts"]
        refused = upstream.answered(429) - before
    finally:
        relay.stop()
    return Result(f"batchyard, {name}", counts["succeeded"], requests, refused, elapsed, rpm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rpm", type=int, default=3000)
    parser.add_argument("--semaphore", type=int, default=64)
    parser.add_argument("--client-seconds", type=float, default=30.0)
    args = parser.parse_args()
    rpm = args.rpm
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        upstream = ServerProcess(
            workdir,
            f"sqlite:///{workdir / 'upstream.db'}",
            UPSTREAM.format(rpm=rpm),
            extra_args=("--log-level", "info"),
        )
        upstream.start()
        try:
            key = add_key(upstream.db_url, "clients")
            print(
                f"upstream: simulated, rate_limit_rpm={rpm}, latency 0.2-2 s; "
                f"{args.requests} requests per batchyard mode; "
                f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}"
            )
            results = []
            for name, limits in (("headers only", ""), ("rpm configured", f"rpm = {rpm}")):
                results.append(relay_run(workdir, upstream, name, args.requests, rpm, limits))
                print(results[-1].line(), flush=True)
                time.sleep(2)  # let the upstream's bucket fill again
            loop_result: list[Result] = []
            thread = threading.Thread(
                target=lambda: loop_result.append(
                    tutorial_loop(upstream.base_url, key, rpm, args.client_seconds)
                )
            )
            thread.start()
            thread.join()
            print(loop_result[0].line(), flush=True)
            time.sleep(2)
            print(
                asyncio.run(
                    semaphore_client(
                        upstream.base_url,
                        key,
                        rpm,
                        args.requests,
                        args.semaphore,
                        args.client_seconds,
                    )
                ).line()
            )
        finally:
            upstream.stop()


if __name__ == "__main__":
    main()
