"""A 100,000-request batch is accepted and completes on the simulated engine."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from harness import ServerProcess, create_key, sim_config

COUNT = 100_000


def test_hundred_thousand_requests_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'batchyard.db'}"
    server = ServerProcess(
        tmp_path, url, sim_config(claim_size=2000, sim_latency_ms=0, sim_concurrency=2000)
    ).start()
    key = create_key(url, "large")
    headers = {"x-api-key": key}
    requests = [
        {
            "custom_id": f"ticket-{n:06d}",
            "params": {
                "model": "sim",
                "max_tokens": 16,
                "messages": [{"role": "user", "content": f"Classify ticket {n}: refund please"}],
            },
        }
        for n in range(COUNT)
    ]
    try:
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=600) as http:
            started = time.monotonic()
            created = http.post("/v1/messages/batches", json={"requests": requests})
            assert created.status_code == 200, created.text
            batch_id = created.json()["id"]
            acknowledged = time.monotonic() - started
            assert created.json()["request_counts"]["processing"] == COUNT
            while (batch := http.get(f"/v1/messages/batches/{batch_id}").json())[
                "processing_status"
            ] != "ended":
                assert sum(batch["request_counts"].values()) == COUNT
                time.sleep(0.5)
            finished = time.monotonic() - started
            assert batch["request_counts"]["succeeded"] == COUNT
            seen: set[str] = set()
            with http.stream("GET", f"/v1/messages/batches/{batch_id}/results") as response:
                for line in response.iter_lines():
                    seen.add(line[len('{"custom_id":"') :].split('"', 1)[0])
        peak = server.peak_rss_mib()
    finally:
        server.stop()
    assert len(seen) == COUNT
    with capsys.disabled():  # shown in every test log, not only on failure
        print(
            f"\n100k batch: acknowledged in {acknowledged:.1f} s, ended after {finished:.1f} s, "
            f"server peak RSS {peak:.0f} MiB"
        )
