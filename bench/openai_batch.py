"""Benchmark: an OpenAI batch of N chat requests against the same N requests as an Anthropic
Message Batch, on one server, in one run (the baseline is the path measured in
``bench/ingest_and_queue.py``).

Both go through HTTP and the queue on the zero-latency simulated engine, alternating which goes
first over ``--rounds`` rounds (best of each kept: the machine is shared). Prints:

* **accept**: OpenAI upload (``POST /v1/files``) + create (``POST /v1/batches``) against the
  Anthropic create (``POST /v1/messages/batches``) of the same requests;
* **end to end**: from the first byte sent until the batch is final, and requests/s;
* **download**: the output file against the Anthropic results;
* the server's peak RSS.

Usage: ``python bench/openai_batch.py [--requests N] [--rounds R]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from harness import ServerProcess, create_key

CONFIG = """
claim_size = 2000
[[models]]
name = "sim"
engine = "simulated"
latency_ms = 0
output_tokens = 8
concurrency = 4000
"""

SYSTEM = "Classify the support ticket as billing, bug, account or other. Answer with one word."
TICKET = "Hello, I was charged twice this month (order #{n}). Please refund the duplicate."


def chat_lines(count: int) -> bytes:
    lines = (
        json.dumps(
            {
                "custom_id": f"ticket-{n:06d}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": "sim",
                    "max_tokens": 64,
                    "messages": [
                        {"role": "system", "content": SYSTEM},
                        {"role": "user", "content": TICKET.format(n=n)},
                    ],
                },
            }
        )
        for n in range(count)
    )
    return ("\n".join(lines) + "\n").encode()


def anthropic_body(count: int) -> bytes:
    requests = [
        {
            "custom_id": f"ticket-{n:06d}",
            "params": {
                "model": "sim",
                "max_tokens": 64,
                "system": SYSTEM,
                "messages": [{"role": "user", "content": TICKET.format(n=n)}],
            },
        }
        for n in range(count)
    ]
    return json.dumps({"requests": requests}).encode()


def run_openai(http: httpx.Client, content: bytes) -> dict[str, float]:
    started = time.perf_counter()
    uploaded = http.post(
        "/v1/files", files={"file": ("in.jsonl", content)}, data={"purpose": "batch"}
    )
    assert uploaded.status_code == 200, uploaded.text
    created = http.post(
        "/v1/batches",
        json={
            "input_file_id": uploaded.json()["id"],
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        },
    )
    assert created.status_code == 200, created.text
    accepted = time.perf_counter() - started
    batch_id = created.json()["id"]
    while (batch := http.get(f"/v1/batches/{batch_id}").json())["status"] == "in_progress":
        time.sleep(0.05)
    finished = time.perf_counter() - started
    assert batch["status"] == "completed", batch
    started = time.perf_counter()
    with http.stream("GET", f"/v1/files/{batch['output_file_id']}/content") as response:
        lines = sum(1 for _ in response.iter_lines())
    download = time.perf_counter() - started
    assert lines == batch["request_counts"]["total"]
    return {"accept": accepted, "end_to_end": finished, "download": download}


def run_anthropic(http: httpx.Client, body: bytes) -> dict[str, float]:
    started = time.perf_counter()
    created = http.post(
        "/v1/messages/batches", content=body, headers={"content-type": "application/json"}
    )
    assert created.status_code == 200, created.text
    accepted = time.perf_counter() - started
    batch_id = created.json()["id"]
    while (batch := http.get(f"/v1/messages/batches/{batch_id}").json())[
        "processing_status"
    ] != "ended":
        time.sleep(0.05)
    finished = time.perf_counter() - started
    started = time.perf_counter()
    with http.stream("GET", f"/v1/messages/batches/{batch_id}/results") as response:
        lines = sum(1 for _ in response.iter_lines())
    download = time.perf_counter() - started
    assert lines == batch["request_counts"]["succeeded"]
    return {"accept": accepted, "end_to_end": finished, "download": download}


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    return {name: min(run[name] for run in runs) for name in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    count = args.requests
    content, body = chat_lines(count), anthropic_body(count)
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )
    print(
        f"{count} requests: OpenAI input file {len(content) / 1e6:.1f} MB, "
        f"Anthropic create body {len(body) / 1e6:.1f} MB"
    )
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url = f"sqlite:///{workdir / 'batchyard.db'}"
        server = ServerProcess(workdir, url, CONFIG).start()
        try:
            key = create_key(url, "bench")
            headers = {"authorization": f"Bearer {key}", "anthropic-version": "2023-06-01"}
            openai_runs, anthropic_runs = [], []
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=900) as http:
                for round_number in range(args.rounds):
                    order = [("openai", content), ("anthropic", body)]
                    if round_number % 2:
                        order.reverse()
                    for name, payload in order:
                        if name == "openai":
                            openai_runs.append(run_openai(http, payload))
                        else:
                            anthropic_runs.append(run_anthropic(http, payload))
            peak = server.peak_rss_mib()
        finally:
            server.stop()
    ours, base = best(openai_runs), best(anthropic_runs)
    for name, label in [
        ("accept", "accept"),
        ("end_to_end", "end to end"),
        ("download", "download"),
    ]:
        print(
            f"{label:>11}: OpenAI {ours[name]:6.2f} s, Anthropic {base[name]:6.2f} s, "
            f"ratio {ours[name] / base[name]:.2f}"
        )
    print(
        f"requests/s end to end: OpenAI {count / ours['end_to_end']:,.0f}, "
        f"Anthropic {count / base['end_to_end']:,.0f}"
    )
    print(f"server peak RSS: {peak:.0f} MiB (best of {args.rounds} rounds each, alternating)")


if __name__ == "__main__":
    main()
