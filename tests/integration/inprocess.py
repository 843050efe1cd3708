"""The real batchyard app inside the test's event loop, reached through httpx.ASGITransport.

Same app, store, worker and sweeps as ``batchyard serve``, on a fresh SQLite file, without a
process start or a socket. ASGITransport buffers each response whole, so a stream that must
be read while it is still open (live SSE) needs a real server: those tests are e2e.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import traceback
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import openai
from harness import new_api_key
from starlette.applications import Starlette

from batchyard.config import Settings, load_settings
from batchyard.process import create_server_app

BASE_URL = "http://testserver"
BATCHES = "/v1/messages/batches"


class InProcessServer:
    """A started app: HTTP clients for it, and API keys made in its own store."""

    base_url = BASE_URL

    def __init__(self, app: Starlette, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.db_url = settings.resolved_database_url()
        self.transport = httpx.ASGITransport(app=app)

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        """A client with ``key`` (if any) and ``anthropic-version``; close it after use."""
        headers = {"anthropic-version": "2023-06-01", **kwargs.pop("headers", {})}
        if key is not None:
            headers["x-api-key"] = key
        kwargs.setdefault("base_url", BASE_URL)
        return httpx.AsyncClient(transport=self.transport, headers=headers, **kwargs)

    def sdk(self, **options: Any) -> anthropic.AsyncAnthropic:
        """The official async SDK on this app (``api_key`` or ``auth_token`` in ``options``);
        close it after use. Built on httpx2 (an httpx fork), it takes only its own
        transports, hence httpx2's ASGITransport."""
        return anthropic.AsyncAnthropic(
            base_url=BASE_URL,
            http_client=anthropic.DefaultAsyncHttpxClient(
                transport=httpx2.ASGITransport(app=self.app)
            ),
            **options,
        )

    def openai_sdk(self, **options: Any) -> openai.AsyncOpenAI:
        """The official OpenAI SDK (async) on this app, every answer checked against the
        SDK's types (``_strict_response_validation``); close it after use. Also on httpx2."""
        return openai.AsyncOpenAI(
            base_url=f"{BASE_URL}/v1",
            http_client=openai.DefaultAsyncHttpxClient(
                transport=httpx2.ASGITransport(app=self.app)
            ),
            _strict_response_validation=True,
            **options,
        )

    async def add_key(self, workspace: str) -> str:
        """A key of ``workspace`` (made if new), in the store the app itself uses."""
        return await new_api_key(self.app.state.context.keys, workspace)

    async def api(self, workspace: str) -> AsyncApi:
        """An :class:`AsyncApi` with a fresh key of ``workspace``."""
        return AsyncApi(self.client(await self.add_key(workspace)))


#: A stop takes milliseconds; the worker's shutdown hand-back is itself bounded at 10 s.
STOP_TIMEOUT_SECONDS = 15


@asynccontextmanager
async def running_app(
    workdir: Path, config: str, database_url: str | None = None
) -> AsyncIterator[InProcessServer]:
    """The app of ``config`` (TOML) on ``workdir/batchyard.db`` (or ``database_url``), its
    lifespan entered.

    A background loop that dies makes the server send itself SIGTERM (its supervisor would
    restart it); here that fails the test instead of ending the test run. A stop that does
    not finish fails the test too, naming the tasks that ignored their cancellation (a real
    server would hang on SIGTERM the same way).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "batchyard.toml"
    config_path.write_text(config)
    database_url = database_url or f"sqlite:///{workdir / 'batchyard.db'}"
    settings = load_settings(config_path, database_url=database_url)
    app = create_server_app(settings)
    stop_requests: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop_requests.append(signum))
    try:
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        try:
            yield InProcessServer(app, settings)
        finally:
            await _stop(lifespan)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert not stop_requests, "a background task crashed and stopped the server (see the log)"


async def _stop(lifespan: AbstractAsyncContextManager[None]) -> None:
    stopping = asyncio.ensure_future(lifespan.__aexit__(None, None, None))
    done, _ = await asyncio.wait({stopping}, timeout=STOP_TIMEOUT_SECONDS)
    if stopping in done:
        stopping.result()
        return
    stuck = [
        f"{task.get_name()}: {task.get_coro()!r}\n"
        + "".join(traceback.format_list(traceback.extract_stack(task.get_stack()[-1])[-3:]))
        for task in asyncio.all_tasks()
        if task.cancelling() and task.get_stack()
    ]
    raise AssertionError(
        f"the app did not stop within {STOP_TIMEOUT_SECONDS} s; cancelled tasks still "
        "running (a swallowed CancelledError?):\n" + "\n".join(stuck)
    )


class AsyncApi:
    """The batch routes over an in-process client, for tests that need raw HTTP."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def __aenter__(self) -> AsyncApi:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.http.aclose()

    async def create(self, requests: list[dict[str, object]]) -> dict[str, Any]:
        response = await self.http.post(BATCHES, json={"requests": requests})
        assert response.status_code == 200, response.text
        batch: dict[str, Any] = response.json()
        return batch

    async def retrieve(self, batch_id: str) -> dict[str, Any]:
        response = await self.http.get(f"{BATCHES}/{batch_id}")
        assert response.status_code == 200, response.text
        batch: dict[str, Any] = response.json()
        return batch

    async def wait_until(
        self, batch_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 120
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            batch = await self.retrieve(batch_id)
            if done(batch):
                return batch
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting; last state {batch}")
            await asyncio.sleep(0.02)

    async def wait_ended(self, batch_id: str, timeout: float = 120) -> dict[str, Any]:
        return await self.wait_until(batch_id, lambda b: b["processing_status"] == "ended", timeout)

    async def results(self, batch_id: str) -> list[dict[str, Any]]:
        response = await self.http.get(f"{BATCHES}/{batch_id}/results")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/x-jsonl")
        lines = response.content.split(b"\n")
        assert lines[-1] == b"", "the body ends with exactly one newline"
        assert all(lines[:-1]), "no blank lines"
        return [json.loads(line) for line in lines[:-1]]
