"""``make demo``: a real batch, end to end, on the embedded model.

1. Starts ``batchyard serve`` on a SQLite file under ``.demo/`` with the embedded
   SmolLM2-135M-Instruct model (``examples/demo.toml``) and creates an API key.
2. Submits the seed job through the official ``anthropic`` SDK, with only ``base_url``
   changed: three support tickets, then 200 generated tickets in one batch. Shows live
   progress, prints every result next to its custom_id, writes ``demo_results.jsonl``.
3. Prints the token usage and what it would cost at standard vs batch prices (the price
   table in ``examples/demo.toml``).
4. Stops the server, starts it once more to show the cached model loading fast, stops it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import anthropic
import httpx

ROOT = Path(__file__).resolve().parents[1]
WORKDIR = ROOT / ".demo"
CONFIG = ROOT / "examples" / "demo.toml"
RESULTS = ROOT / "demo_results.jsonl"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


PORT = int(os.environ.get("BATCHYARD_DEMO_PORT", "0")) or _free_port()
BASE_URL = f"http://127.0.0.1:{PORT}"
MODEL = "smollm2-135m"

SEED_TICKETS = {
    "ticket-1": "My invoice shows a double charge for November. Please refund one.",
    "ticket-2": "The app crashes every time I try to upload a profile photo.",
    "ticket-3": "How do I change the email address on my account?",
}
QUESTION = "Is this ticket about billing, a bug, or the account? Answer in one word."

PROBLEMS = [
    "was charged twice",
    "cannot log in",
    "sees a blank screen after the update",
    "wants to change the account email",
    "got an invoice in the wrong currency",
    "reports the export button does nothing",
    "forgot the password",
    "asks for a refund of the annual plan",
    "sees the app crash on start",
    "wants to close the account",
]
PRODUCTS = ["mobile app", "web dashboard", "Pro subscription", "desktop client", "API"]


def generated_tickets(count: int) -> dict[str, str]:
    rng = random.Random(7)
    return {
        f"gen-{n:03d}": f"A customer using the {rng.choice(PRODUCTS)} "
        f"{rng.choice(PROBLEMS)}. Ticket #{1000 + n}."
        for n in range(count)
    }


def batchyard(*args: str) -> list[str]:
    return [sys.executable, "-m", "batchyard", *args]


def start_server(db: Path, log: Path) -> tuple[subprocess.Popen[bytes], float]:
    """Start the server; return it with the seconds until the model was ready."""
    started = time.perf_counter()
    with log.open("ab") as out:
        server = subprocess.Popen(
            batchyard(
                "serve",
                "--db",
                str(db),
                "--config",
                str(CONFIG),
                "--port",
                str(PORT),
                "--log-level",
                "warning",
            ),
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
    while True:
        if server.poll() is not None:
            sys.exit(f"the server exited; see {log}")
        try:
            state = httpx.get(f"{BASE_URL}/health", timeout=2).json()["models"].get(MODEL)
        except httpx.TransportError:
            state = "starting"
        if state == "ready":
            return server, time.perf_counter() - started
        if state == "failed":
            sys.exit(f"the model failed to load; see {log}")
        time.sleep(0.25)


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=60)


def request(custom_id: str, ticket: str, max_tokens: int) -> dict[str, object]:
    """A classification request; the final assistant turn is a prefill the model continues."""
    return {
        "custom_id": custom_id,
        "params": {
            "model": MODEL,
            "max_tokens": max_tokens,
            "temperature": 0,
            "system": "You are a support triage assistant.",
            "messages": [
                {"role": "user", "content": f"Ticket: {ticket}\n\n{QUESTION}"},
                {"role": "assistant", "content": "Answer:"},
            ],
        },
    }


def run_batch(
    client: anthropic.Anthropic, tickets: dict[str, str], max_tokens: int
) -> list[dict[str, object]]:
    batch = client.messages.batches.create(
        requests=[request(cid, text, max_tokens) for cid, text in tickets.items()]
    )
    print(f"  created {batch.id} with {len(tickets)} requests")
    started = time.perf_counter()
    while batch.processing_status != "ended":
        time.sleep(1)
        batch = client.messages.batches.retrieve(batch.id)
        counts = batch.request_counts
        done = len(tickets) - counts.processing
        print(
            f"  {batch.processing_status:<11} {done:>4}/{len(tickets)} done  "
            f"succeeded={counts.succeeded} errored={counts.errored}  "
            f"[{time.perf_counter() - started:5.1f} s]",
            flush=True,
        )
    lines = []
    for result in client.messages.batches.results(batch.id):
        lines.append(result.to_dict())
        if result.result.type == "succeeded":
            text = " ".join(
                block.text for block in result.result.message.content if block.type == "text"
            ).replace("\n", " ")
            print(f"  {result.custom_id:<9} {text[:100]}")
        else:
            print(f"  {result.custom_id:<9} [{result.result.type}]")
    return lines


def print_costs(lines: list[dict[str, object]], elapsed: float) -> None:
    model = next(m for m in tomllib.loads(CONFIG.read_text())["models"] if m["name"] == MODEL)
    usage = [
        line["result"]["message"]["usage"]
        for line in lines  # type: ignore[index]
        if line["result"]["type"] == "succeeded"
    ]  # type: ignore[index]
    tokens_in = sum(u["input_tokens"] for u in usage)
    tokens_out = sum(u["output_tokens"] for u in usage)
    standard = (
        tokens_in * model["price_input_per_mtok"] + tokens_out * model["price_output_per_mtok"]
    ) / 1e6
    batch = standard * model.get("batch_discount", 0.5)
    print(
        f"\nusage: {len(usage)} succeeded requests, {tokens_in:,} input + {tokens_out:,} "
        f"output tokens; {tokens_out / elapsed:.0f} output tokens/s overall"
    )
    print(
        f"cost at the configured prices (${model['price_input_per_mtok']}/"
        f"${model['price_output_per_mtok']} per MTok): standard ${standard:.4f}, "
        f"batch ${batch:.4f} (saves ${standard - batch:.4f})"
    )


def main() -> None:
    WORKDIR.mkdir(exist_ok=True)
    db = WORKDIR / "batchyard.db"
    for leftover in WORKDIR.glob("batchyard.db*"):  # each demo starts from an empty queue
        leftover.unlink()
    log = WORKDIR / "server.log"
    key = subprocess.run(
        batchyard("keys", "create", "--workspace", "demo", "--db", str(db)),
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[-1]
    print(f"starting batchyard on {BASE_URL} (SQLite at {db}, log {log}) ...")
    server, load_s = start_server(db, log)
    print(
        f"model {MODEL} ready {load_s:.1f} s after start "
        "(the first start ever converts the GGUF weights and caches them)"
    )
    try:
        client = anthropic.Anthropic(api_key=key, base_url=BASE_URL)
        started = time.perf_counter()
        print("\nbatch 1: the three seed tickets")
        lines = run_batch(client, SEED_TICKETS, max_tokens=16)
        print("\nbatch 2: 200 generated tickets in one batch")
        lines += run_batch(client, generated_tickets(200), max_tokens=12)
        elapsed = time.perf_counter() - started
    finally:
        stop_server(server)
    with RESULTS.open("w") as out:
        for line in lines:
            out.write(json.dumps(line, separators=(",", ":")) + "\n")
    print(f"\nwrote {len(lines)} results to {RESULTS}")
    print_costs(lines, elapsed)

    server, load_s = start_server(db, log)
    stop_server(server)
    print(f"\nsecond start: model ready {load_s:.1f} s after start (cached weights; goal < 10 s)")


if __name__ == "__main__":
    main()
