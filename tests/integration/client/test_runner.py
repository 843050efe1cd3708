"""The run's rounds, retries and resume, in process: ``run_async`` on an embedded batchyard
serving the simulated engine (the same app ``serve`` runs, over httpx's ASGI transport)."""

from __future__ import annotations

import asyncio
import csv
import json
import sqlite3
from pathlib import Path

import pytest

from batchyard.client import RunOptions, run, run_async
from batchyard.client.state import StateDir

CONFIG = """
lease_seconds = 1
poll_interval_seconds = 0.05
retry_base_seconds = 0.01
retry_max_seconds = 0.02
max_attempts = 1

[[models]]
name = "sim"
engine = "simulated"
concurrency = 16
price_input_per_mtok = 3.0
price_output_per_mtok = 15.0
{extra}
"""


def setup(tmp_path: Path, rows: int, extra: str = "") -> tuple[Path, Path]:
    config = tmp_path / "sim.toml"
    config.write_text(CONFIG.format(extra=extra))
    source = tmp_path / "rows.csv"
    with source.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["name", "text"])
        writer.writerows([f"r{n}", f"row number {n}"] for n in range(rows))
    return config, source


def batches_made(output: Path) -> int:
    database = StateDir(output).path / "batchyard.db"
    with sqlite3.connect(database) as db:
        (count,) = db.execute("SELECT count(*) FROM batches").fetchone()
    return int(count)


def options(config: Path, source: Path, output: Path, **more: object) -> RunOptions:
    fields: dict[str, object] = {
        "input": source,
        "output": output,
        "prompt": "Say something about {text}",
        "model": "sim",
        "max_tokens": 8,
        "config": config,
        "poll_interval": 0.02,
        **more,
    }
    return RunOptions(**fields)  # type: ignore[arg-type]


def test_the_library_call_returns_the_joined_table_and_retries(tmp_path: Path) -> None:
    config, source = setup(tmp_path, 60, "api_error_rate = 0.3\noverloaded_rate = 0.1")
    output = tmp_path / "out.csv"
    result = run(
        source,
        prompt="About {text}",
        model="sim",
        max_tokens=8,
        out=output,
        config=config,
        retries=12,
        id_column="name",
        max_batch_requests=25,
        poll_interval=0.02,
    )
    assert result.table.columns == [
        "name",
        "text",
        "response",
        "stop_reason",
        "input_tokens",
        "output_tokens",
        "error_type",
        "error_message",
    ]
    assert [row["name"] for row in result.table.rows] == [f"r{n}" for n in range(60)]
    assert all(row["response"] and row["error_type"] is None for row in result.table.rows)
    summary = result.summary
    assert summary.by_type["succeeded"] == 60 and summary.rounds > 1 and summary.retried > 0
    assert summary.batches == batches_made(output)
    assert summary.batch_cost == pytest.approx(summary.standard_cost / 2)  # type: ignore[operator]
    with output.open(newline="") as written:
        assert [row["name"] for row in csv.DictReader(written)] == [f"r{n}" for n in range(60)]


async def test_invalid_requests_are_never_retried(tmp_path: Path) -> None:
    extra = 'fail_first_calls = 1\nfail_first_error = "invalid_request_error"'
    config, source = setup(tmp_path, 10, extra)
    output = tmp_path / "out.jsonl"
    result = await run_async(options(config, source, output, retries=3))
    assert result.summary.rounds == 1
    assert result.summary.errors == {"invalid_request_error": 10}
    assert all(row["response"] is None for row in result.table.rows)
    assert batches_made(output) == 1


async def test_retries_stop_after_the_last_round(tmp_path: Path) -> None:
    config, source = setup(tmp_path, 10, "api_error_rate = 1.0")
    output = tmp_path / "out.jsonl"
    result = await run_async(options(config, source, output, retries=2))
    assert result.summary.rounds == 3 and batches_made(output) == 3
    assert result.summary.errors == {"api_error": 10}
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert {line["error_type"] for line in lines} == {"api_error"}


async def test_a_cancelled_run_resumes_without_creating_twice(tmp_path: Path) -> None:
    config, source = setup(tmp_path, 90, "latency_ms = 100")
    output = tmp_path / "out.csv"
    state_dir = StateDir(output)
    run_options = options(config, source, output, max_batch_requests=30)
    first = asyncio.ensure_future(run_async(run_options))
    while not (
        state_dir.state_file.exists()
        and all(
            c.get("batch_id")
            for c in json.loads(state_dir.state_file.read_bytes())["rounds"][0]["chunks"]
        )
    ):
        assert not first.done()
        await asyncio.sleep(0.01)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert not output.exists()
    result = await run_async(run_options)
    assert result.summary.by_type["succeeded"] == 90
    assert batches_made(output) == 3


async def test_another_run_in_the_same_state_directory_is_refused(tmp_path: Path) -> None:
    config, source = setup(tmp_path, 5)
    output = tmp_path / "out.csv"
    await run_async(options(config, source, output))
    with pytest.raises(ValueError, match="other rows or options"):
        await run_async(options(config, source, output, max_tokens=9))


@pytest.mark.parametrize(
    "limit", ["max_requests_per_batch = 20", "max_body_bytes = 3000"], ids=["count", "bytes"]
)
async def test_batches_the_server_refuses_as_too_big_are_halved(
    tmp_path: Path, limit: str
) -> None:
    config, source = setup(tmp_path, 50)
    config.write_text(limit + "\n" + config.read_text())
    output = tmp_path / "out.csv"
    result = await run_async(options(config, source, output))
    assert result.summary.by_type["succeeded"] == 50
    state = json.loads(StateDir(output).state_file.read_bytes())
    sizes = [len(chunk["rows"]) for chunk in state["rounds"][0]["chunks"]]
    assert sum(sizes) == 50 and max(sizes) <= 20 and len(sizes) == batches_made(output)
    assert [row["name"] for row in result.table.rows] == [f"r{n}" for n in range(50)]
