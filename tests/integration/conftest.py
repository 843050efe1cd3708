"""Integration tier: the real app in-process on a fresh SQLite file per test."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from harness import KeyFactory, sim_config
from inprocess import InProcessServer, running_app


@pytest.fixture
def server_config() -> str:
    """The TOML the ``server`` fixture serves; override it in a module for other settings."""
    return sim_config()


@pytest.fixture
async def server(tmp_path: Path, server_config: str) -> AsyncIterator[InProcessServer]:
    """The app of ``server_config``, started in this test's event loop, stopped after it."""
    async with running_app(tmp_path / "server", server_config) as started:
        yield started


@pytest.fixture
def key_factory(server: InProcessServer) -> KeyFactory:
    return server.add_key


@pytest.fixture
async def client(server: InProcessServer, api_key: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client with ``api_key``."""
    async with server.client(api_key) as http:
        yield http


@pytest.fixture
def no_errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No error (an unhandled exception is a 500 and logs one) in the app during the test."""
    caplog.set_level(logging.WARNING)
    yield
    errors = [
        record
        for when in ("setup", "call")
        for record in caplog.get_records(when)
        if record.levelno >= logging.ERROR or record.exc_info or "Traceback" in record.getMessage()
    ]
    assert not errors, "\n".join(record.getMessage() for record in errors)
