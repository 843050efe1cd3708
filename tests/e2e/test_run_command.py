"""``batchyard run`` as a user runs it: a real process against a real server on loopback.

The server is ``batchyard serve`` on the simulated engine, which fails a share of calls with
retryable errors (``max_attempts = 1`` lets every one of them reach the results), so the run
has to resubmit them. What the server holds is the oracle: its batch list says how many
batches were created, and its result lines say which answer belongs to which row.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow
import pyarrow.parquet as pq
import pytest
from harness import Api, ServerProcess, add_key, message_request, sim_config

ROWS = 300
FLAKY = """
[[models]]
name = "flaky"
engine = "simulated"
latency_ms = 2
concurrency = 32
api_error_rate = 0.15
overloaded_rate = 0.1

[[models]]
name = "steady"
engine = "simulated"
latency_ms = 40
concurrency = 4
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir: Path = tmp_path_factory.mktemp("run-server")
    config = sim_config(FLAKY, max_attempts=1)
    server = ServerProcess(workdir, f"sqlite:///{workdir / 'batchyard.db'}", config)
    server.start()
    yield server
    server.stop()


def tickets(path: Path, rows: int = ROWS) -> list[dict[str, str]]:
    table = [
        {"ticket_id": f"T-{n:04d}", "ticket": f"My order {n} arrived, broken, again"}
        for n in range(1, rows + 1)
    ]
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, ["ticket_id", "ticket"])
        writer.writeheader()
        writer.writerows(table)
    return table


def run(
    server: ServerProcess, key: str, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchyard", "run", *args, "--yes", "--poll-interval", "0.1"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment(server, key),
    )


def environment(server: ServerProcess, key: str) -> dict[str, str]:
    return {**os.environ, "ANTHROPIC_BASE_URL": server.base_url, "ANTHROPIC_API_KEY": key}


def server_batches(api: Api) -> list[dict[str, Any]]:
    page = api.http.get("/v1/messages/batches", params={"limit": 1000}).json()
    assert not page["has_more"]
    batches: list[dict[str, Any]] = page["data"]
    return batches


def answers_on_server(api: Api) -> dict[str, str]:
    """The one succeeded answer per custom_id across every batch the key made."""
    found: dict[str, str] = {}
    for batch in server_batches(api):
        for line in api.results(batch["id"]):
            if line["result"]["type"] == "succeeded":
                assert line["custom_id"] not in found, "a row succeeded twice"
                blocks = line["result"]["message"]["content"]
                found[line["custom_id"]] = "".join(b["text"] for b in blocks)
    return found


def test_a_csv_with_retryable_errors_comes_back_whole_and_in_order(
    server: ServerProcess, tmp_path: Path
) -> None:
    key = add_key(server.db_url, "csv")
    rows = tickets(tmp_path / "tickets.csv")
    out = tmp_path / "answers.csv"
    result = run(
        server,
        key,
        str(tmp_path / "tickets.csv"),
        "--prompt",
        "Classify this ticket: {ticket}",
        "--model",
        "flaky",
        "--max-tokens",
        "16",
        "--id-column",
        "ticket_id",
        "--out",
        str(out),
        "--batch-size",
        "100",
        "--retries",
        "10",
    )
    assert result.returncode == 0, result.stderr
    with out.open(newline="") as answers:
        written = list(csv.DictReader(answers))
    assert [row["ticket_id"] for row in written] == [row["ticket_id"] for row in rows]
    assert [row["ticket"] for row in written] == [row["ticket"] for row in rows]
    api = Api(server.base_url, key)
    on_server = answers_on_server(api)
    assert len(on_server) == ROWS
    for row in written:
        assert row["error_type"] == "" and row["stop_reason"] in ("end_turn", "max_tokens")
        assert row["response"] == on_server[row["ticket_id"]]
        assert int(row["output_tokens"]) > 0 and int(row["input_tokens"]) > 0
    batches = server_batches(api)
    sizes = [sum(b["request_counts"].values()) for b in reversed(batches)]  # oldest first
    assert sizes[:3] == [100, 100, 100], "300 rows in batches of at most 100"
    assert len(batches) > 3, "the injected errors were resubmitted in further rounds"
    assert "Succeeded" in result.stderr and "300" in result.stderr


def test_sigint_then_the_same_command_resumes_without_sending_twice(
    server: ServerProcess, tmp_path: Path
) -> None:
    key = add_key(server.db_url, "resume")
    tickets(tmp_path / "tickets.csv", 120)
    out = tmp_path / "answers.jsonl"
    command = [
        sys.executable,
        "-m",
        "batchyard",
        "run",
        str(tmp_path / "tickets.csv"),
        "--prompt",
        "{ticket}",
        "--model",
        "steady",
        "--max-tokens",
        "8",
        "--out",
        str(out),
        "--batch-size",
        "40",
        "--yes",
        "--poll-interval",
        "0.1",
    ]
    first = subprocess.Popen(
        command, env=environment(server, key), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    state = tmp_path / "answers.jsonl.batchyard" / "state.json"
    deadline = time.monotonic() + 60
    while not (
        state.exists() and json.loads(state.read_text())["rounds"][0]["chunks"][-1].get("batch_id")
    ):
        assert time.monotonic() < deadline, "the run never submitted its batches"
        assert first.poll() is None, first.communicate()
        time.sleep(0.05)
    api = Api(server.base_url, key)
    assert any(b["processing_status"] == "in_progress" for b in server_batches(api))
    first.send_signal(signal.SIGINT)
    _, stderr = first.communicate(timeout=30)
    assert first.returncode == 130, stderr
    assert b"run the same command again" in stderr and b"Traceback" not in stderr
    assert not out.exists(), "an interrupted run writes no output"

    second = subprocess.run(
        command, env=environment(server, key), capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 0, second.stderr
    assert "Resuming" in second.stderr
    assert len(server_batches(api)) == 3, "no batch was created twice"
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["ticket_id"] for line in lines] == [f"T-{n:04d}" for n in range(1, 121)]
    assert all(line["response"] and line["error_type"] is None for line in lines)


def test_jsonl_in_parquet_out_and_back(server: ServerProcess, tmp_path: Path) -> None:
    key = add_key(server.db_url, "formats")
    source = tmp_path / "articles.jsonl"
    articles = [
        {"slug": f"post {n}/x", "body": f"Text of article {n}", "words": n} for n in range(25)
    ]
    source.write_text("".join(json.dumps(a) + "\n" for a in articles))
    parquet = tmp_path / "summaries.parquet"
    done = run(
        server,
        key,
        str(source),
        "--prompt",
        "Summarize: {body}",
        "--model",
        "sim",
        "--max-tokens",
        "12",
        "--id-column",
        "slug",
        "--out",
        str(parquet),
    )
    assert done.returncode == 0, done.stderr
    table = pq.read_table(parquet).to_pylist()
    assert [row["slug"] for row in table] == [a["slug"] for a in articles]
    assert [row["words"] for row in table] == list(range(25)), "numbers stay numbers"
    assert all(row["response"] and row["output_tokens"] > 0 for row in table)

    source_parquet = tmp_path / "catalog.parquet"
    products = [{"sku": n, "name": f"Widget {n}", "price": n * 1.5} for n in range(12)]
    pq.write_table(pyarrow.Table.from_pylist(products), source_parquet)
    back = tmp_path / "enriched.jsonl"
    again = run(
        server,
        key,
        str(source_parquet),
        "--prompt",
        "Describe {name} at {price}",
        "--model",
        "sim",
        "--max-tokens",
        "4",
        "--id-column",
        "sku",
        "--out",
        str(back),
    )
    assert again.returncode == 0, again.stderr
    lines = [json.loads(line) for line in back.read_text().splitlines()]
    assert [(line["sku"], line["price"]) for line in lines] == [
        (p["sku"], p["price"]) for p in products
    ]
    assert all(line["stop_reason"] == "max_tokens" and line["output_tokens"] == 4 for line in lines)


def test_mistakes_are_one_line_before_anything_is_sent(
    server: ServerProcess, tmp_path: Path
) -> None:
    key = add_key(server.db_url, "mistakes")
    dupes = tmp_path / "dupes.csv"
    dupes.write_text("id,text\na/b,one\na b,two\n")
    answered = tmp_path / "answered.csv"
    answered.write_text("text,response\none,already\n")
    mistakes = {
        "a_b": (dupes, "{text}", "sim", ["--id-column", "id"]),
        'a column "response"': (answered, "{text}", "sim", []),
        "{txt}": (dupes, "{txt}", "sim", []),
        "--model nope": (dupes, "{text}", "nope", []),
    }
    for named, (source, prompt, model, more) in mistakes.items():
        result = run(
            server, key, str(source), "--prompt", prompt, "--model", model,
            "--max-tokens", "4", "--out", str(tmp_path / "o.csv"), *more,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("error: ") and named in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert server_batches(Api(server.base_url, key)) == []
    assert httpx.get(f"{server.base_url}/health").status_code == 200


def batches_command(
    server: ServerProcess, key: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchyard", "batches", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**environment(server, key), "COLUMNS": "200"},
    )


def test_the_batches_commands(server: ServerProcess, tmp_path: Path) -> None:
    key = add_key(server.db_url, "admin")
    api = Api(server.base_url, key)
    done = api.create([message_request(f"q{n}") for n in range(5)])
    slow = api.create([message_request(f"s{n}", model="steady") for n in range(2000)])

    watched = batches_command(server, key, "watch", done["id"], "--poll-interval", "0.1")
    assert watched.returncode == 0, watched.stderr
    assert "5 succeeded" in watched.stderr

    listed = batches_command(server, key, "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.index(slow["id"]) < listed.stdout.index(done["id"]), "newest first"

    shown = batches_command(server, key, "show", done["id"])
    assert "ended" in shown.stdout and "5 succeeded" in shown.stdout

    to_stdout = batches_command(server, key, "results", done["id"])
    assert [json.loads(line) for line in to_stdout.stdout.splitlines()] == api.results(done["id"])
    saved = tmp_path / "results.jsonl"
    to_file = batches_command(server, key, "results", done["id"], "--out", str(saved))
    assert to_file.returncode == 0 and saved.read_text() == to_stdout.stdout

    canceled = batches_command(server, key, "cancel", slow["id"])
    assert canceled.returncode == 0, canceled.stderr
    assert slow["id"] in canceled.stdout
    ended = api.wait_ended(slow["id"])
    assert ended["request_counts"]["canceled"] > 0

    unknown = batches_command(server, key, "show", "msgbatch_nope")
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: 404 not_found_error")
    assert "Traceback" not in unknown.stderr
    nowhere = subprocess.run(
        [sys.executable, "-m", "batchyard", "batches", "list"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "ANTHROPIC_BASE_URL"},
    )
    assert nowhere.returncode == 2 and "--base-url" in nowhere.stderr
