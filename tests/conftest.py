"""Shared by every tier. Each tier that serves the API provides ``key_factory``: in-process
(tests/integration) or in a real ``batchyard serve`` (tests/e2e)."""

from __future__ import annotations

import pytest
from harness import KeyFactory


@pytest.fixture
async def api_key(key_factory: KeyFactory, request: pytest.FixtureRequest) -> str:
    """A key in a workspace of its own, so each test sees only its own batches."""
    return await key_factory(f"ws-{request.node.name}"[:180])
