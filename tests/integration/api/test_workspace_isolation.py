"""A batch is visible only inside its workspace: 404 everywhere else, absent from list."""

from __future__ import annotations

from harness import message_request
from inprocess import InProcessServer


async def test_other_workspace_gets_404_and_empty_list(server: InProcessServer) -> None:
    owner = await server.api("iso-owner")
    # A second key of the same workspace sees the batch (keys belong to workspaces).
    colleague = await server.api("iso-owner")
    stranger_key = await server.add_key("iso-stranger")
    stranger = server.client(headers={"authorization": f"Bearer {stranger_key}"})
    async with owner, colleague, stranger:
        batch = await owner.create([message_request("a")])
        await owner.wait_ended(batch["id"])
        assert (await colleague.retrieve(batch["id"]))["id"] == batch["id"]

        path = f"/v1/messages/batches/{batch['id']}"
        for method, url in [
            ("GET", path),
            ("POST", f"{path}/cancel"),
            ("DELETE", path),
            ("GET", f"{path}/results"),
        ]:
            response = await stranger.request(method, url)
            assert response.status_code == 404, (method, url, response.text)
            assert response.json()["error"]["type"] == "not_found_error"
        assert (await stranger.get("/v1/messages/batches")).json()["data"] == []
        # The stranger's failed delete did not touch the owner's batch.
        assert (await owner.retrieve(batch["id"]))["processing_status"] == "ended"
