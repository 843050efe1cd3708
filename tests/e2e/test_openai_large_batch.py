"""A 50,000-line OpenAI batch input file (OpenAI's limit) is accepted and finishes on the
simulated engine, through the official ``openai`` SDK against a real server; the server's
peak RSS is printed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import openai
import pytest
from harness import ServerProcess, create_key, sim_config

COUNT = 50_000


def test_fifty_thousand_lines_upload_run_download(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'batchyard.db'}"
    server = ServerProcess(
        tmp_path, url, sim_config(claim_size=2000, sim_latency_ms=0, sim_concurrency=2000)
    ).start()
    client = openai.OpenAI(
        base_url=f"{server.base_url}/v1", api_key=create_key(url, "large"), timeout=600
    )
    lines = (
        json.dumps(
            {
                "custom_id": f"ticket-{n:05d}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": "sim",
                    "max_tokens": 16,
                    "messages": [
                        {"role": "system", "content": "Classify the ticket in one word."},
                        {"role": "user", "content": f"Ticket {n}: please refund the charge"},
                    ],
                },
            }
        )
        for n in range(COUNT)
    )
    path = tmp_path / "requests.jsonl"
    path.write_text("\n".join(lines) + "\n")
    try:
        started = time.monotonic()
        with path.open("rb") as file:
            uploaded = client.files.create(file=file, purpose="batch")
        upload_seconds = time.monotonic() - started
        assert uploaded.bytes == path.stat().st_size
        batch = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        accepted_seconds = time.monotonic() - started
        assert batch.status == "in_progress"
        assert batch.request_counts is not None and batch.request_counts.total == COUNT
        while (batch := client.batches.retrieve(batch.id)).status == "in_progress":
            time.sleep(0.5)
        finished_seconds = time.monotonic() - started
        assert batch.status == "completed", batch
        assert batch.request_counts is not None and batch.request_counts.completed == COUNT
        assert batch.output_file_id is not None and batch.error_file_id is None
        seen: set[str] = set()
        with client.files.with_streaming_response.content(batch.output_file_id) as response:
            for line in response.iter_lines():
                seen.add(json.loads(line)["custom_id"])
        peak = server.peak_rss_mib()
    finally:
        server.stop()
    assert len(seen) == COUNT
    with capsys.disabled():  # shown in every test log, not only on failure
        print(
            f"\n50k OpenAI batch ({path.stat().st_size / 2**20:.1f} MiB file): uploaded in "
            f"{upload_seconds:.1f} s, accepted after {accepted_seconds:.1f} s, completed after "
            f"{finished_seconds:.1f} s, server peak RSS {peak:.0f} MiB"
        )
