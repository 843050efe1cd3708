"""Composition root: store + models + services + (optionally) the worker, in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette

from batchyard.api.app import create_app
from batchyard.api.context import ApiContext
from batchyard.config import Settings
from batchyard.engines.registry import ModelRegistry, default_models
from batchyard.service.batches import BatchService
from batchyard.store.sql import SqlStore
from batchyard.worker.dispatcher import Dispatcher
from batchyard.worker.maintenance import run_maintenance
from batchyard.worker.webhooks import WebhookSender

logger = logging.getLogger("batchyard.server")


def model_registry(settings: Settings) -> ModelRegistry:
    return ModelRegistry(settings.models or default_models())


async def warm_up(models: ModelRegistry) -> None:
    """Load every model in the background and log how long each took."""

    async def one(served_name: str) -> None:
        served = models.get(served_name)
        assert served is not None
        started = time.perf_counter()
        try:
            await served.ready()
        except Exception:
            logger.exception("model %s failed to load", served_name)
            return
        logger.info("model %s ready in %.1f s", served_name, time.perf_counter() - started)

    await asyncio.gather(*(one(served.config.name) for served in models.models))


@contextlib.asynccontextmanager
async def background(*coroutines: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run ``coroutines`` as tasks for the duration of the block, then cancel them."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    for task in tasks:
        task.add_done_callback(_report_crash)
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _report_crash(task: asyncio.Task[None]) -> None:
    """A background loop must never die silently: say so loudly, then stop the process.

    Its supervisor (systemd, Kubernetes, a shell loop) restarts it; the leases make the
    restart safe. Carrying on would leave a server that answers but never runs anything.
    """
    if task.cancelled() or task.exception() is None:
        return
    logger.critical("background task failed; stopping", exc_info=task.exception())
    os.kill(os.getpid(), signal.SIGTERM)


def create_server_app(settings: Settings, *, run_worker: bool = True) -> Starlette:
    """The HTTP app; with ``run_worker`` it also claims and runs requests in-process."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = await SqlStore.open(settings.resolved_database_url())
        models = model_registry(settings)
        dispatcher = Dispatcher(store, models, settings) if run_worker else None
        app.state.context = ApiContext(
            settings=settings,
            store=store,
            batches=BatchService(store, settings),
            models=models,
            nudge_worker=dispatcher.wake if dispatcher else (lambda: None),
        )
        # Sweeps run here even without a worker: expiry and retention must not wait for one.
        jobs: list[Coroutine[Any, Any, None]] = [
            warm_up(models),
            run_maintenance(store, settings, dispatcher.wake if dispatcher else lambda: None),
            WebhookSender(store, settings).run(),
        ]
        if dispatcher is not None:
            jobs.append(dispatcher.run())
        try:
            async with background(*jobs):
                yield
        finally:
            await models.aclose()
            await store.close()

    return create_app(lifespan)


async def run_worker(settings: Settings) -> None:
    """A worker without the HTTP API (``batchyard worker``), until cancelled."""
    store = await SqlStore.open(settings.resolved_database_url())
    models = model_registry(settings)
    dispatcher = Dispatcher(store, models, settings)
    try:
        async with background(
            warm_up(models),
            run_maintenance(store, settings, dispatcher.wake),
            WebhookSender(store, settings).run(),
        ):
            await dispatcher.run()
    finally:
        await models.aclose()
        await store.close()
