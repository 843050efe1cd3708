"""``?partial=true``: results so far while a batch runs (a batchyard extension)."""

from __future__ import annotations

import json

from harness import Api, ServerProcess, add_key, message_request


def test_partial_results_grow_while_the_batch_runs(sim_server: ServerProcess) -> None:
    api = Api(sim_server.base_url, add_key(sim_server.db_url, "partial"))
    batch = api.create([message_request(f"s{n}", model="sim-slow", text=f"t{n}") for n in range(8)])
    path = f"/v1/messages/batches/{batch['id']}/results"

    assert api.http.get(path).status_code == 400  # the standard call still waits for the end
    early = api.http.get(path, params={"partial": "true"})
    assert early.status_code == 200
    assert early.content == b"" or early.content.endswith(b"\n")

    running = api.wait_until(batch["id"], lambda b: b["request_counts"]["succeeded"] >= 2)
    assert running["processing_status"] == "in_progress"
    partial = api.http.get(path, params={"partial": "true"})
    lines = partial.content.split(b"\n")
    assert lines[-1] == b"" and all(lines[:-1]), "JSONL without blank lines"
    finished = [json.loads(line) for line in lines[:-1]]
    assert 2 <= len(finished) < 8
    assert {line["result"]["type"] for line in finished} == {"succeeded"}

    api.wait_ended(batch["id"])
    assert len(api.results(batch["id"])) == 8
