"""A batchyard server inside the client's own process, for ``batchyard run`` without a URL.

The same app ``batchyard serve`` runs (its worker included) on a SQLite database in the run's
state directory, reached through httpx's in-process ASGI transport: the run talks to it with
the very calls it makes to a remote server, over no socket. Its batches live in that database,
so a run interrupted here resumes here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from batchyard import ids
from batchyard.client.http import BatchApi, Connection
from batchyard.config import load_settings
from batchyard.process import create_server_app

EMBEDDED_URL = "http://batchyard.embedded"


@asynccontextmanager
async def embedded_api(database_url: str, config: Path | None) -> AsyncIterator[BatchApi]:
    """A :class:`BatchApi` on an in-process server; ``config`` picks its engines."""
    settings = load_settings(config, database_url=database_url)
    key = ids.api_key()
    app = create_server_app(settings, initial_key=key)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with BatchApi(Connection(EMBEDDED_URL, key, transport)) as api:
            yield api
