"""``?partial=true``: results so far while a batch runs (a batchyard extension)."""

from __future__ import annotations

import json

from harness import message_request
from inprocess import InProcessServer


async def test_partial_results_grow_while_the_batch_runs(server: InProcessServer) -> None:
    async with await server.api("partial") as api:
        batch = await api.create(
            [message_request(f"s{n}", model="sim-slow", text=f"t{n}") for n in range(8)]
        )
        path = f"/v1/messages/batches/{batch['id']}/results"

        # The standard call still waits for the end.
        assert (await api.http.get(path)).status_code == 400
        early = await api.http.get(path, params={"partial": "true"})
        assert early.status_code == 200
        assert early.content == b"" or early.content.endswith(b"\n")

        running = await api.wait_until(batch["id"], lambda b: b["request_counts"]["succeeded"] >= 2)
        assert running["processing_status"] == "in_progress"
        partial = await api.http.get(path, params={"partial": "true"})
        lines = partial.content.split(b"\n")
        assert lines[-1] == b"" and all(lines[:-1]), "JSONL without blank lines"
        finished = [json.loads(line) for line in lines[:-1]]
        assert 2 <= len(finished) < 8
        assert {line["result"]["type"] for line in finished} == {"succeeded"}

        await api.wait_ended(batch["id"])
        assert len(await api.results(batch["id"])) == 8
