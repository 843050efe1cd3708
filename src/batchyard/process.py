"""Composition root: builds a batchyard process from its settings.

``batchyard serve`` is the HTTP API with, by default, a worker in the same process
(:func:`create_server_app`); ``batchyard worker`` is a worker alone (:func:`run_worker`).
It opens the store (:func:`~batchyard.store.open_store` is the one place that picks an
implementation, by URL) and hands each part only the protocol it needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette

from batchyard import ids
from batchyard.api.app import create_app
from batchyard.api.context import ApiContext
from batchyard.config import Settings
from batchyard.engines.anthropic_batches import UpstreamBatchApi, batch_options
from batchyard.engines.registry import ModelRegistry, default_models
from batchyard.service.batches import BatchService
from batchyard.service.files import FileService
from batchyard.service.openai_batches import OpenAIBatchService
from batchyard.store import open_store
from batchyard.store.notices import EVENTS_CHANNEL, WORK_CHANNEL, listen_for_notices
from batchyard.store.protocols import Store
from batchyard.timeutil import now_us
from batchyard.worker.dispatcher import Dispatcher
from batchyard.worker.maintenance import run_maintenance
from batchyard.worker.upstream_batches import UpstreamBatches
from batchyard.worker.webhooks import WebhookSender

logger = logging.getLogger("batchyard.process")


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


def _background_jobs(
    store: Store, models: ModelRegistry, settings: Settings, wake: Callable[[], None] | None
) -> list[Coroutine[Any, Any, None]]:
    """What every process runs beside its main job: model loading, the sweeps (expiry and
    retention must not wait for a worker), webhook delivery, and the wake-ups other
    processes send (PostgreSQL; elsewhere the listener returns at once): ended batches'
    events for the webhook sender, and in a process with a worker (``wake`` wakes it) new
    work and cancels."""
    sender = WebhookSender(store.outbox, store.batches, settings)
    wakes = {EVENTS_CHANNEL: sender.wake}
    if wake is not None:
        wakes[WORK_CHANNEL] = wake
    return [
        warm_up(models),
        run_maintenance(store.sweeps, settings, wake or (lambda: None)),
        sender.run(),
        listen_for_notices(settings.resolved_database_url(), wakes),
    ]


def upstream_batches(
    store: Store, models: ModelRegistry, settings: Settings
) -> list[UpstreamBatches]:
    """One :class:`UpstreamBatches` per ``anthropic-batch`` model: a worker's other half."""
    return [
        UpstreamBatches(
            store.submissions,
            UpstreamBatchApi(served.config, batch_options(served.config)),
            name=served.config.name,
            names=served.names,
            settings=settings,
        )
        for served in models.passthrough
    ]


def _wake_all(dispatcher: Dispatcher, passthrough: list[UpstreamBatches]) -> Callable[[], None]:
    """New work (or a cancel) for every part of a worker that may hold some."""

    def wake() -> None:
        dispatcher.wake()
        for part in passthrough:
            part.wake()

    return wake


def create_server_app(
    settings: Settings, *, run_worker: bool = True, initial_key: str | None = None
) -> Starlette:
    """The HTTP app; with ``run_worker`` it also claims and runs requests in-process.

    ``initial_key`` is stored as an API key of workspace ``default`` at start: the only way
    to have a key for the in-memory store, which no other process can reach.
    """

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = await open_store(settings.resolved_database_url())
        if initial_key is not None:
            await store.keys.create_api_key(
                "default", ids.hash_api_key(initial_key), initial_key[:10], now_us()
            )
        models = model_registry(settings)
        dispatcher = (
            Dispatcher(store.queue, models, settings, store.rate_limits) if run_worker else None
        )
        passthrough = upstream_batches(store, models, settings) if run_worker else []
        wake = _wake_all(dispatcher, passthrough) if dispatcher else None
        openai_batches = OpenAIBatchService(store.batches, store.files, settings)
        app.state.context = ApiContext(
            settings=settings,
            keys=store.keys,
            batches=BatchService(store.batches, settings),
            files=FileService(store.files, generated=openai_batches),
            openai_batches=openai_batches,
            models=models,
            nudge_worker=wake or (lambda: None),
        )
        jobs = _background_jobs(store, models, settings, wake)
        if dispatcher is not None:
            jobs.append(dispatcher.run())
        jobs += [part.run() for part in passthrough]
        try:
            async with background(*jobs):
                yield
        finally:
            await models.aclose()
            await store.close()

    return create_app(lifespan)


async def run_worker(settings: Settings) -> None:
    """A worker without the HTTP API (``batchyard worker``), until cancelled."""
    store = await open_store(settings.resolved_database_url())
    models = model_registry(settings)
    dispatcher = Dispatcher(store.queue, models, settings, store.rate_limits)
    passthrough = upstream_batches(store, models, settings)
    jobs = _background_jobs(store, models, settings, _wake_all(dispatcher, passthrough))
    jobs += [part.run() for part in passthrough]
    try:
        async with background(*jobs):
            await dispatcher.run()
    finally:
        await models.aclose()
        await store.close()
