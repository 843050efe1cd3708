"""A slow model's backlog does not hold up requests for other models."""

from __future__ import annotations

from pathlib import Path

from harness import Api, ServerProcess, add_key, message_request, sim_config


def test_fast_model_batch_finishes_while_a_slow_backlog_waits(sim_server: ServerProcess) -> None:
    slow_owner = Api(sim_server.base_url, add_key(sim_server.db_url, "fair-slow"))
    fast_owner = Api(sim_server.base_url, add_key(sim_server.db_url, "fair-fast"))
    # sim-slow runs 2 at a time at 300 ms: this backlog (more than one claim_size) takes
    # 90 s; a worker that claimed oldest-first regardless of model would sit on it.
    backlog = slow_owner.create(
        [message_request(f"s{n}", model="sim-slow", text=f"t{n}") for n in range(600)]
    )
    quick = fast_owner.create([message_request("q", model="sim")])
    assert fast_owner.wait_ended(quick["id"], timeout=10)["request_counts"]["succeeded"] == 1
    assert slow_owner.retrieve(backlog["id"])["processing_status"] == "in_progress"
    slow_owner.http.post(f"/v1/messages/batches/{backlog['id']}/cancel")
    slow_owner.wait_ended(backlog["id"], timeout=30)


def test_unknown_model_requests_error_promptly_while_a_model_is_busy(tmp_path: Path) -> None:
    config = sim_config(claim_size=50)
    server = ServerProcess(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", config).start()
    try:
        api = Api(server.base_url, add_key(server.db_url, "unknown"))
        backlog = api.create(
            [message_request(f"s{n}", model="sim-slow", text=f"t{n}") for n in range(300)]
        )
        misspelt = api.create([message_request(f"x{n}", model="nope") for n in range(400)])
        ended = api.wait_ended(misspelt["id"], timeout=15)
        assert ended["request_counts"]["errored"] == 400
        assert api.retrieve(backlog["id"])["processing_status"] == "in_progress"
    finally:
        server.stop()
