"""``batchyard serve --no-worker`` plus two ``batchyard worker`` processes on one SQLite file."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from harness import Api, ServerProcess, create_key, message_request, sim_config


def test_api_only_server_and_two_workers_share_the_queue(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'batchyard.db'}"
    config = sim_config(sim_latency_ms=10, sim_concurrency=16, claim_size=50)
    api_server = ServerProcess(tmp_path, url, config, extra_args=("--no-worker",)).start()
    workers = [ServerProcess(tmp_path, url, config, command="worker") for _ in range(2)]
    try:
        api = Api(api_server.base_url, create_key(url, "workers"))
        batch = api.create([message_request(f"r{n}", text=f"t{n}") for n in range(400)])
        for worker in workers:
            worker.start()
        ended = api.wait_ended(batch["id"], timeout=120)
        lines = api.results(batch["id"])
    finally:
        for process in (*workers, api_server):
            process.stop()
    assert ended["request_counts"]["succeeded"] == 400
    assert len({line["custom_id"] for line in lines}) == len(lines) == 400
    logs = [worker.log() for worker in workers]
    assert not any("Traceback" in log for log in logs), logs


def test_sigterm_to_a_worker_hands_its_requests_back(tmp_path: Path) -> None:
    """``kill -TERM`` (systemd, Kubernetes) must not strand requests until their leases expire."""
    url = f"sqlite:///{tmp_path / 'batchyard.db'}"
    config = sim_config(lease_seconds=120, sim_latency_ms=5000, sim_concurrency=4)
    api_server = ServerProcess(tmp_path, url, config, extra_args=("--no-worker",)).start()
    worker = ServerProcess(tmp_path, url, config, command="worker")
    try:
        api = Api(api_server.base_url, create_key(url, "sigterm"))
        batch = api.create([message_request(f"r{n}", text=f"t{n}") for n in range(4)])
        worker.start()
        deadline = time.monotonic() + 30
        while running_requests(tmp_path) == 0:
            assert time.monotonic() < deadline, worker.log()
            time.sleep(0.1)
        worker.stop()  # SIGTERM, then wait for the process to exit
        assert worker.process is not None and worker.process.returncode == 0, worker.log()
        assert running_requests(tmp_path) == 0
        assert api.retrieve(batch["id"])["request_counts"]["processing"] == 4
    finally:
        worker.stop()
        api_server.stop()


def running_requests(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "batchyard.db") as db:
        count: int = db.execute("SELECT count(*) FROM requests WHERE state = 'running'").fetchone()[
            0
        ]
    return count
