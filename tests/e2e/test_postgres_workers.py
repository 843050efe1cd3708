"""PostgreSQL: an API server and several workers share one queue; a worker killed with
SIGKILL mid-batch loses nothing and duplicates nothing."""

from __future__ import annotations

from pathlib import Path

from harness import (
    Api,
    ServerProcess,
    create_key,
    message_request,
    postgres_database,
    sim_config,
)


def test_workers_on_postgres_survive_a_sigkill(tmp_path: Path) -> None:
    with postgres_database() as url:
        config = sim_config(lease_seconds=2, sim_latency_ms=20, sim_concurrency=8, claim_size=50)
        api_server = ServerProcess(tmp_path, url, config, extra_args=("--no-worker",)).start()
        workers = [ServerProcess(tmp_path, url, config, command="worker") for _ in range(3)]
        try:
            api = Api(api_server.base_url, create_key(url, "pg"))
            batch = api.create([message_request(f"r{n:04d}", text=f"t{n}") for n in range(900)])
            for worker in workers:
                worker.start()
            api.wait_until(batch["id"], lambda b: b["request_counts"]["succeeded"] >= 150)
            workers[0].kill()
            ended = api.wait_ended(batch["id"], timeout=120)
            lines = api.results(batch["id"])
        finally:
            for process in (*workers, api_server):
                process.stop()
    assert ended["request_counts"] == {
        "processing": 0,
        "succeeded": 900,
        "errored": 0,
        "canceled": 0,
        "expired": 0,
    }
    assert len(lines) == len({line["custom_id"] for line in lines}) == 900
