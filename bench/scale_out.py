"""Benchmark: what adding worker processes buys, on PostgreSQL.

An API server (``serve --no-worker``) and 1, 2 and 4 ``batchyard worker`` processes share one
PostgreSQL database; the model is the simulated engine with a fixed latency (default 50 ms)
and ``concurrency = 16`` per worker, so the ideal rate is ``workers x 16 / latency``. Each run
creates one batch of ``--seconds`` worth of ideal work and times it from the create's answer
until ``ended``. Prints requests/s, the speed-up over one worker and the efficiency against
the ideal (the baseline: what the engine would allow if claims, flushes and wake-ups cost
nothing).

Usage: ``python bench/scale_out.py [--latency-ms 50] [--seconds 10] [--workers 1,2,4]``
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from harness import Api, ServerProcess, create_key, message_request, postgres_database

CONCURRENCY = 16


def config(latency_ms: int) -> str:
    return f"""
poll_interval_seconds = 0.5
[[models]]
name = "sim"
engine = "simulated"
latency_ms = {latency_ms}
output_tokens = 8
concurrency = {CONCURRENCY}
"""


def run(workers: int, latency_ms: int, seconds: float) -> tuple[int, float]:
    """Requests and seconds from the create's answer until the batch ended."""
    ideal = workers * CONCURRENCY / (latency_ms / 1000)
    count = int(ideal * seconds)
    with postgres_database() as url, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        settings = config(latency_ms)
        api_server = ServerProcess(workdir, url, settings, extra_args=("--no-worker",)).start()
        processes = [
            ServerProcess(workdir, url, settings, command="worker").start() for _ in range(workers)
        ]
        try:
            api = Api(api_server.base_url, create_key(url, "bench"))
            time.sleep(1)  # every worker listening and its model loaded
            batch = api.create([message_request(f"r{n:06d}", text=f"t{n}") for n in range(count)])
            started = time.perf_counter()
            api.wait_until(  # polled often: the poll's own delay is not the queue's
                batch["id"],
                lambda b: b["processing_status"] == "ended",
                timeout=seconds * 20,
                interval=0.01,
            )
            elapsed = time.perf_counter() - started
        finally:
            for process in (*processes, api_server):
                process.stop()
    return count, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; PostgreSQL; simulated engine "
        f"{args.latency_ms} ms, concurrency {CONCURRENCY} per worker"
    )
    first_rate = None
    for workers in (int(n) for n in args.workers.split(",")):
        count, elapsed = run(workers, args.latency_ms, args.seconds)
        rate = count / elapsed
        ideal = workers * CONCURRENCY / (args.latency_ms / 1000)
        first_rate = first_rate or rate
        print(
            f"{workers} worker(s): {count} requests in {elapsed:.2f} s = {rate:,.0f} requests/s, "
            f"speed-up {rate / first_rate:.2f}x, {rate / ideal:.1%} of ideal ({ideal:,.0f}/s)"
        )


if __name__ == "__main__":
    main()
