"""``GET /v1/models`` passes the SDK's strict response validation and pages like the API."""

from __future__ import annotations

import anthropic
import pytest
from harness import ServerProcess


def test_models_list_strict_and_paged(sim_server: ServerProcess, api_key: str) -> None:
    client = anthropic.Anthropic(
        api_key=api_key, base_url=sim_server.base_url, _strict_response_validation=True
    )
    assert [model.id for model in client.models.list(limit=1)] == ["sim", "sim-slow"]
    page = client.models.list(limit=1)
    assert page.has_more and len(page.data) == 1
    info = client.models.retrieve("sim")
    assert info.lifecycle == "active" and info.max_tokens == 8192
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("nope")
