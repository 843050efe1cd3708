"""Work notices: where there is no PostgreSQL, the listener returns at once (a background
task that raised would stop the whole process)."""

from __future__ import annotations

import pytest

from batchyard.store.notices import WORK_CHANNEL, listen_for_notices


@pytest.mark.parametrize("url", ["memory://", "sqlite:///x.db", "sqlite+aiosqlite:///x.db"])
async def test_the_listener_returns_at_once_without_postgresql(url: str) -> None:
    woken: list[None] = []
    await listen_for_notices(url, {WORK_CHANNEL: lambda: woken.append(None)})
    assert woken == []
