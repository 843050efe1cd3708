"""A batch is visible only inside its workspace: 404 everywhere else, absent from list."""

from __future__ import annotations

import httpx
from harness import Api, ServerProcess, create_key, message_request


def test_other_workspace_gets_404_and_empty_list(sim_server: ServerProcess) -> None:
    owner = Api(sim_server.base_url, create_key(sim_server.db_url, "iso-owner"))
    # A second key of the same workspace sees the batch (keys belong to workspaces).
    colleague = Api(sim_server.base_url, create_key(sim_server.db_url, "iso-owner"))
    stranger_key = create_key(sim_server.db_url, "iso-stranger")
    stranger = httpx.Client(
        base_url=sim_server.base_url, headers={"authorization": f"Bearer {stranger_key}"}
    )

    batch = owner.create([message_request("a")])
    owner.wait_ended(batch["id"])
    assert colleague.retrieve(batch["id"])["id"] == batch["id"]

    path = f"/v1/messages/batches/{batch['id']}"
    for method, url in [
        ("GET", path),
        ("POST", f"{path}/cancel"),
        ("DELETE", path),
        ("GET", f"{path}/results"),
    ]:
        response = stranger.request(method, url)
        assert response.status_code == 404, (method, url, response.text)
        assert response.json()["error"]["type"] == "not_found_error"
    assert stranger.get("/v1/messages/batches").json()["data"] == []
    # The stranger's failed delete did not touch the owner's batch.
    assert owner.retrieve(batch["id"])["processing_status"] == "ended"
