"""A slow model's backlog does not hold up requests for other models."""

from __future__ import annotations

from pathlib import Path

from harness import message_request, sim_config
from inprocess import InProcessServer, running_app


async def test_fast_model_batch_finishes_while_a_slow_backlog_waits(
    server: InProcessServer,
) -> None:
    slow_owner = await server.api("fair-slow")
    fast_owner = await server.api("fair-fast")
    async with slow_owner, fast_owner:
        # sim-slow runs 2 at a time at 300 ms: this backlog (more than one claim_size) takes
        # 90 s; a worker that claimed oldest-first regardless of model would sit on it.
        backlog = await slow_owner.create(
            [message_request(f"s{n}", model="sim-slow", text=f"t{n}") for n in range(600)]
        )
        quick = await fast_owner.create([message_request("q", model="sim")])
        ended = await fast_owner.wait_ended(quick["id"], timeout=10)
        assert ended["request_counts"]["succeeded"] == 1
        assert (await slow_owner.retrieve(backlog["id"]))["processing_status"] == "in_progress"
        await slow_owner.http.post(f"/v1/messages/batches/{backlog['id']}/cancel")
        await slow_owner.wait_ended(backlog["id"], timeout=30)


async def test_unknown_model_requests_error_promptly_while_a_model_is_busy(
    tmp_path: Path,
) -> None:
    async with (
        running_app(tmp_path, sim_config(claim_size=50)) as server,
        await server.api("unknown") as api,
    ):
        backlog = await api.create(
            [message_request(f"s{n}", model="sim-slow", text=f"t{n}") for n in range(300)]
        )
        misspelt = await api.create([message_request(f"x{n}", model="nope") for n in range(400)])
        ended = await api.wait_ended(misspelt["id"], timeout=15)
        assert ended["request_counts"]["errored"] == 400
        assert (await api.retrieve(backlog["id"]))["processing_status"] == "in_progress"
