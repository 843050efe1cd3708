"""One batch lifecycle through the API on each store the server can run on.

The same requests give the same result lines on SQLite and on the in-memory store
(``--db memory://``): results are rendered from the stored neutral outcomes either way.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import message_request, sim_config
from inprocess import running_app


@pytest.mark.parametrize("database", ["sqlite", "memory"])
async def test_create_run_cancel_results_delete(tmp_path: Path, database: str) -> None:
    url = "memory://" if database == "memory" else None
    async with (
        running_app(tmp_path, sim_config(), database_url=url) as server,
        await server.api("lifecycle") as api,
    ):
        batch = await api.create(
            [
                message_request("ok-1"),
                message_request("ok-2", text="another"),
                message_request("no-such-model", model="nope"),
                message_request("bad-params", max_tokens=-1),
            ]
        )
        ended = await api.wait_ended(batch["id"])
        assert ended["request_counts"] == {
            "processing": 0,
            "succeeded": 2,
            "errored": 2,
            "canceled": 0,
            "expired": 0,
        }
        first = await api.results(batch["id"])
        assert [line["custom_id"] for line in first] == sorted(
            ["ok-1", "ok-2", "no-such-model", "bad-params"]
        )
        by_id = {line["custom_id"]: line["result"] for line in first}
        assert by_id["ok-1"]["message"]["usage"]["service_tier"] == "batch"
        assert by_id["no-such-model"]["error"]["error"] == {
            "type": "not_found_error",
            "message": "model: nope",
        }
        assert by_id["bad-params"]["error"]["error"]["type"] == "invalid_request_error"
        assert by_id["bad-params"]["error"]["request_id"].startswith("req_")
        # Rendered at every read from the same stored outcomes: byte-identical lines.
        assert await api.results(batch["id"]) == first

        slow = await api.create([message_request(f"s{i}", model="sim-slow") for i in range(6)])
        canceled = (await api.http.post(f"/v1/messages/batches/{slow['id']}/cancel")).json()
        assert canceled["processing_status"] in ("canceling", "ended")
        slow_ended = await api.wait_ended(slow["id"])
        counts = slow_ended["request_counts"]
        assert counts["canceled"] >= 4 and counts["canceled"] + counts["succeeded"] == 6
        types = {line["result"]["type"] for line in await api.results(slow["id"])}
        assert "canceled" in types and types <= {"canceled", "succeeded"}

        deleted = await api.http.delete(f"/v1/messages/batches/{batch['id']}")
        assert deleted.json() == {"id": batch["id"], "type": "message_batch_deleted"}
        missing = await api.http.get(f"/v1/messages/batches/{batch['id']}/results")
        assert missing.status_code == 404
