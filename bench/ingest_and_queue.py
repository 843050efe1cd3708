"""Benchmark: ingest a 100,000-request batch over HTTP, then run it on the simulated engine.

Prints, in one run on one machine:

* the **floor**: JSON-decoding the same body with the standard library plus one bulk insert
  of every ``(custom_id, params)`` into a fresh SQLite file (WAL, synchronous=FULL), done in
  a child process so its peak RSS is its own;
* batchyard's **time to acknowledge** ``POST /v1/messages/batches`` (from the first byte
  sent to the 200) and the server's peak RSS, with the ratio to the floor (goal: at most 2x);
* the **end-to-end rate**: requests/s from create until ``processing_status == "ended"``
  on the zero-latency simulated engine (goal: at least 10,000 requests/s on SQLite).

Usage: ``python bench/ingest_and_queue.py [--requests N] [--db-url URL] [--claim-size 2000]
[--concurrency 4000]`` (issue 11's figure: ``--claim-size 512 --concurrency 1000``, the
default ``claim_size``)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from harness import ServerProcess, create_key


def config(claim_size: int, concurrency: int) -> str:
    return f"""
claim_size = {claim_size}
[[models]]
name = "sim"
engine = "simulated"
latency_ms = 0
output_tokens = 8
concurrency = {concurrency}
"""


TICKET = (
    "Hello, I was charged twice for my subscription this month (order #{n}). "
    "Please refund the duplicate charge and confirm by email. Thanks!"
)


def make_body(count: int) -> bytes:
    requests = [
        {
            "custom_id": f"ticket-{n:06d}",
            "params": {
                "model": "sim",
                "max_tokens": 64,
                "system": "Classify the support ticket as billing, bug, account or other. "
                "Answer with one word.",
                "messages": [{"role": "user", "content": TICKET.format(n=n)}],
            },
        }
        for n in range(count)
    ]
    return json.dumps({"requests": requests}).encode()


def _floor_child(body_path: str, db_path: str, out: Any) -> None:
    body = Path(body_path).read_bytes()
    started = time.perf_counter()
    decoded = json.loads(body)
    rows = [
        (item["custom_id"], json.dumps(item["params"]).encode()) for item in decoded["requests"]
    ]
    connection = sqlite3.connect(db_path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute(
        "CREATE TABLE requests (id INTEGER PRIMARY KEY, custom_id TEXT, params BLOB)"
    )
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany("INSERT INTO requests (custom_id, params) VALUES (?, ?)", rows)
    connection.execute("COMMIT")
    elapsed = time.perf_counter() - started
    connection.close()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.put((elapsed, peak_mib))


def measure_floor(body_path: Path, workdir: Path) -> tuple[float, float]:
    context = multiprocessing.get_context("spawn")
    queue = context.SimpleQueue()
    child = context.Process(
        target=_floor_child, args=(str(body_path), str(workdir / "floor.db"), queue)
    )
    child.start()
    child.join()
    elapsed, peak = queue.get()
    return float(elapsed), float(peak)


def run(count: int, db_url: str | None, claim_size: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        body = make_body(count)
        body_path = workdir / "body.json"
        body_path.write_bytes(body)
        print(
            f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
        )
        print(f"body: {count} requests, {len(body) / 1e6:.1f} MB")

        floor_s, floor_rss = measure_floor(body_path, workdir)
        print(
            f"floor (json.loads + one bulk INSERT into SQLite): {floor_s:.2f} s, "
            f"peak RSS {floor_rss:.0f} MiB"
        )

        url = db_url or f"sqlite:///{workdir / 'batchyard.db'}"
        server = ServerProcess(workdir, url, config(claim_size, concurrency)).start()
        try:
            key = create_key(url, "bench")
            headers = {
                "x-api-key": key,
                "anthropic-version": "2023-06-01",
                "content-type": "application/json",
            }
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=600) as http:
                started = time.perf_counter()
                response = http.post("/v1/messages/batches", content=body)
                ack_s = time.perf_counter() - started
                response.raise_for_status()
                batch_id = response.json()["id"]
                rss_at_ack = server.peak_rss_mib()
                while True:
                    batch = http.get(f"/v1/messages/batches/{batch_id}").json()
                    if batch["processing_status"] == "ended":
                        break
                    time.sleep(0.05)
                total_s = time.perf_counter() - started
                counts = batch["request_counts"]
                download_started = time.perf_counter()
                lines = 0
                with http.stream("GET", f"/v1/messages/batches/{batch_id}/results") as stream:
                    for line in stream.iter_lines():
                        lines += 1 if line else 0
                download_s = time.perf_counter() - download_started
            peak_rss = server.peak_rss_mib()
        finally:
            server.stop()
        read_floor_s = results_floor(workdir / "batchyard.db") if db_url is None else None

        print(
            f"batchyard acknowledge: {ack_s:.2f} s = {ack_s / floor_s:.2f}x the floor "
            f"(goal <= 2x); server peak RSS at ack {rss_at_ack:.0f} MiB "
            f"({rss_at_ack / floor_rss:.2f}x the floor's)"
        )
        processing_s = total_s - ack_s
        print(
            f"end to end: {count} requests in {total_s:.2f} s = {count / total_s:,.0f} "
            f"requests/s (processing after ack: {processing_s:.2f} s = "
            f"{count / processing_s:,.0f} requests/s; goal >= 10,000)"
        )
        print(f"results: {lines} lines streamed in {download_s:.2f} s; counts {counts}")
        if read_floor_s is not None:
            print(
                f"results floor (the stored outcomes read straight from SQLite, in custom_id "
                f"order, joined as lines): {read_floor_s:.2f} s; download = "
                f"{download_s / read_floor_s:.2f}x the floor"
            )
        print(f"server peak RSS overall: {peak_rss:.0f} MiB")
        assert lines == count == counts["succeeded"], "every request must have one result"


def results_floor(db_path: Path) -> float:
    """Read every stored outcome with its custom_id in order and join them: what a download
    costs before rendering lines and sending them over HTTP."""
    started = time.perf_counter()
    with sqlite3.connect(db_path) as db:
        rows = db.execute(
            "SELECT requests.custom_id, outcomes.outcome FROM requests "
            "JOIN outcomes ON outcomes.row_id = requests.id ORDER BY requests.custom_id"
        )
        body = b"\n".join(custom_id.encode() + outcome for custom_id, outcome in rows)
    assert body
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument(
        "--db-url",
        default=None,
        help="run batchyard on this database instead of a temp SQLite file",
    )
    parser.add_argument("--claim-size", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4000, help="the model's concurrency")
    args = parser.parse_args()
    print(f"claim_size {args.claim_size}, concurrency {args.concurrency}")
    run(args.requests, args.db_url, args.claim_size, args.concurrency)


if __name__ == "__main__":
    main()
