"""``batchyard serve --no-worker`` plus two ``batchyard worker`` processes on one SQLite file."""

from __future__ import annotations

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
