"""``make demo``: a real batch, end to end, on the embedded model.

1. Starts ``batchyard serve`` on a SQLite file under ``.demo/`` with the embedded
   SmolLM2-135M-Instruct model (``examples/demo.toml``) and creates an API key.
2. Submits the seed job through the official ``anthropic`` SDK, with only ``base_url``
   changed: three support tickets, then 200 generated tickets, each generated from a known
   category (billing, bug or account), classified twice in one batch: once with a free-text
   prompt (the answer's first category word is taken), once under a JSON Schema whose
   ``category`` is an enum (``output_config.format``: the answer always parses). Shows a
   progress bar, prints the seed results and a sample, both accuracies against the known
   categories and a confusion table, and writes ``demo_results.jsonl``.
3. Prints the token usage and what it would cost at standard vs batch prices (the price
   table in ``examples/demo.toml``).
4. Stops the server, starts it once more to show the cached model loading fast, stops it.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

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
CATEGORIES = ["billing", "bug", "account"]
#: The structured request: the answer is ``{"category": ...}``, one of the three.
SCHEMA = {
    "type": "object",
    "properties": {"category": {"enum": CATEGORIES}},
    "required": ["category"],
    "additionalProperties": False,
}
#: The structured request's prompt, the best of those tried on this 135M model (README):
#: what each category covers, in the ticket's own words, right before the answer.
HINTS = (
    "Charges, invoices, refunds and plans are billing. Crashes, blank screens, errors and "
    "buttons that do nothing are a bug. Logging in, passwords, email changes and closing the "
    "account are account. Which is this ticket: billing, bug or account?"
)

#: What a generated ticket's customer reports, and the category that makes it.
PROBLEMS = {
    "was charged twice": "billing",
    "cannot log in": "account",
    "sees a blank screen after the update": "bug",
    "wants to change the account email": "account",
    "got an invoice in the wrong currency": "billing",
    "reports the export button does nothing": "bug",
    "forgot the password": "account",
    "asks for a refund of the annual plan": "billing",
    "sees the app crash on start": "bug",
    "wants to close the account": "account",
}
PRODUCTS = ["mobile app", "web dashboard", "Pro subscription", "desktop client", "API"]


@dataclass(frozen=True)
class Ticket:
    text: str
    #: The category the ticket was generated from.
    category: str


def generated_tickets(count: int) -> dict[str, Ticket]:
    rng = random.Random(7)
    tickets = {}
    for n in range(count):
        product, problem = rng.choice(PRODUCTS), rng.choice(list(PROBLEMS))
        tickets[f"gen-{n:03d}"] = Ticket(
            f"A customer using the {product} {problem}. Ticket #{1000 + n}.", PROBLEMS[problem]
        )
    return tickets


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


def free_text_request(custom_id: str, ticket: str, max_tokens: int) -> dict[str, object]:
    """A classification in words; the final assistant turn is a prefill the model continues."""
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


def structured_request(custom_id: str, ticket: str) -> dict[str, object]:
    """The same classification under the enum schema."""
    return {
        "custom_id": custom_id,
        "params": {
            "model": MODEL,
            "max_tokens": 16,
            "temperature": 0,
            "system": "You are a support triage assistant.",
            "messages": [{"role": "user", "content": f"Ticket: {ticket}\n\n{HINTS}"}],
            "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}},
        },
    }


def run_batch(
    client: anthropic.Anthropic, requests: list[dict[str, object]], console: Console
) -> list[dict[str, object]]:
    batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    console.print(f"  created {batch.id} with {len(requests)} requests")
    columns = (
        TextColumn("  {task.description:<11}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("succeeded {task.fields[succeeded]}, errored {task.fields[errored]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(
            batch.processing_status, total=len(requests), succeeded=0, errored=0
        )
        while batch.processing_status != "ended":
            time.sleep(0.5)
            batch = client.messages.batches.retrieve(batch.id)
            counts = batch.request_counts
            progress.update(
                task,
                completed=len(requests) - counts.processing,
                description=batch.processing_status,
                succeeded=counts.succeeded,
                errored=counts.errored,
            )
    return [result.to_dict() for result in client.messages.batches.results(batch.id)]


def answer_text(line: dict[str, Any]) -> str | None:
    if line["result"]["type"] != "succeeded":
        return None
    content = line["result"]["message"]["content"]
    return " ".join(block["text"] for block in content if block["type"] == "text")


def free_text_category(text: str | None) -> str | None:
    """The first category word of a free-text answer (``None``: it names none)."""
    words = re.findall(r"[a-z]+", (text or "").lower())
    return next((word for word in words if word in CATEGORIES), None)


def structured_category(text: str | None) -> str | None:
    category = json.loads(text)["category"] if text else None
    return category if isinstance(category, str) else None


def report_accuracy(
    console: Console, tickets: dict[str, Ticket], lines: list[dict[str, Any]]
) -> None:
    by_id = {line["custom_id"]: answer_text(line) for line in lines}
    free = {cid: free_text_category(by_id[f"free-{cid}"]) for cid in tickets}
    shaped = {cid: structured_category(by_id[f"json-{cid}"]) for cid in tickets}
    for name, answers in (("free text", free), ("enum schema", shaped)):
        right = sum(answers[cid] == ticket.category for cid, ticket in tickets.items())
        unparsed = sum(answer is None for answer in answers.values())
        console.print(
            f"  accuracy, {name:<11}: {right}/{len(tickets)} = {right / len(tickets):.0%} "
            f"({unparsed} answers name no category)"
        )
    table = Table(title="enum schema: known category (rows) x answer (columns)")
    table.add_column("known")
    for category in CATEGORIES:
        table.add_column(category, justify="right")
    for known in CATEGORIES:
        row = [cid for cid, ticket in tickets.items() if ticket.category == known]
        table.add_row(known, *(str(sum(shaped[cid] == got for cid in row)) for got in CATEGORIES))
    console.print(table)
    for cid in list(tickets)[:5]:
        console.print(
            f"  {cid} [{tickets[cid].category}] {tickets[cid].text}\n"
            f"      free text: {(by_id[f'free-{cid}'] or '').strip()[:60]!r}  "
            f"schema: {by_id[f'json-{cid}']}"
        )


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
    console = Console(highlight=False)
    try:
        client = anthropic.Anthropic(api_key=key, base_url=BASE_URL)
        started = time.perf_counter()
        console.print("\nbatch 1: the three seed tickets")
        lines = run_batch(
            client,
            [free_text_request(cid, text, max_tokens=16) for cid, text in SEED_TICKETS.items()],
            console,
        )
        for line in lines:
            console.print(f"  {line['custom_id']:<9} {(answer_text(line) or '').strip()[:100]}")
        tickets = generated_tickets(200)
        console.print(
            "\nbatch 2: 200 generated tickets, each classified in free text and under an enum "
            "schema (400 requests in one batch)"
        )
        classified = run_batch(
            client,
            [free_text_request(f"free-{cid}", t.text, max_tokens=12) for cid, t in tickets.items()]
            + [structured_request(f"json-{cid}", t.text) for cid, t in tickets.items()],
            console,
        )
        lines += classified
        elapsed = time.perf_counter() - started
        report_accuracy(console, tickets, classified)
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
