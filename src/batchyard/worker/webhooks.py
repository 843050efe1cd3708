"""Delivering webhook events from the outbox, at least once, with backoff between attempts.

Events are written to the outbox in the transaction that ends a batch; any process running
this loop may deliver them (each attempt is leased to one process). A 2xx answer delivers
the event; anything else, or no answer within the timeout, schedules a retry until
``webhook_max_attempts`` is reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import httpx
import msgspec

from batchyard.config import Settings
from batchyard.protocol.batches import DeletedMessageBatch
from batchyard.protocol.webhooks import (
    BatchEventData,
    OpenAIBatchEvent,
    WebhookEvent,
    signature_headers,
)
from batchyard.service.batches import batch_to_wire
from batchyard.service.openai_batches import openai_status
from batchyard.store.protocols import BatchStore, OutboxStore
from batchyard.store.records import DueDelivery
from batchyard.timeutil import MICROS_PER_SECOND, now_us, rfc3339
from batchyard.worker.backoff import backoff_micros

logger = logging.getLogger("batchyard.webhooks")

_CLAIM = 32
_MAX_RETRY_SECONDS = 3600.0
_encoder = msgspec.json.Encoder()


class WebhookSender:
    def __init__(self, outbox: OutboxStore, batches: BatchStore, settings: Settings) -> None:
        self._outbox = outbox
        self._batches = batches
        self._settings = settings
        #: Set when events may be due now (a batch ended here or, on PostgreSQL, anywhere).
        self._nudge = asyncio.Event()

    def wake(self) -> None:
        """Events were queued: claim them now instead of at the next poll."""
        self._nudge.set()

    async def run(self) -> None:
        """Deliver due events until cancelled.

        Each attempt runs as its own task (at most ``_CLAIM`` at once) under a hard deadline,
        so one slow or hanging receiver delays only its own events.
        """
        attempts: set[asyncio.Task[None]] = set()
        async with httpx.AsyncClient(follow_redirects=False) as http:
            try:
                while True:
                    free = _CLAIM - len(attempts)
                    claimed = await self._claim(free) if free > 0 else []
                    for delivery in claimed:
                        task = asyncio.create_task(self._attempt(http, delivery))
                        attempts.add(task)
                        task.add_done_callback(attempts.discard)
                    if len(claimed) < free or free == 0:
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(self._settings.poll_interval_seconds):
                                await self._nudge.wait()
                    self._nudge.clear()
            finally:
                for task in attempts:
                    task.cancel()

    async def _claim(self, limit: int) -> list[DueDelivery]:
        now = now_us()
        lease = int((self._settings.webhook_timeout_seconds + 30) * MICROS_PER_SECOND)
        try:
            return await self._outbox.claim_deliveries(
                limit=limit,
                now=now,
                lease_until=now + lease,
                max_attempts=self._settings.webhook_max_attempts,
            )
        except Exception:
            logger.exception("claiming webhook deliveries failed; retrying")
            return []

    async def _attempt(self, http: httpx.AsyncClient, delivery: DueDelivery) -> None:
        body = await self._payload(delivery)
        headers = signature_headers(delivery.secret, f"whmsg_{delivery.id}", int(time.time()), body)
        error: str | None = None
        try:
            # A hard deadline for the whole exchange: httpx's own timeouts are per read, and
            # a receiver trickling one byte a second would never trip them.
            async with asyncio.timeout(self._settings.webhook_timeout_seconds):
                response = await http.post(delivery.url, content=body, headers=headers)
            if not response.is_success:
                error = f"HTTP {response.status_code}"
        except TimeoutError:
            error = f"no answer within {self._settings.webhook_timeout_seconds:g} s"
        except Exception as exc:  # a bad URL, a refused connection: this attempt failed
            error = f"{type(exc).__name__}: {exc}"
        now = now_us()
        retry_at: int | None = None
        if error is not None:
            logger.warning(
                "webhook %s attempt %d to %s failed: %s",
                delivery.id,
                delivery.attempts,
                delivery.url,
                error,
            )
            if delivery.attempts < self._settings.webhook_max_attempts:
                retry_at = now + backoff_micros(
                    delivery.attempts,
                    base_seconds=self._settings.webhook_retry_base_seconds,
                    max_seconds=_MAX_RETRY_SECONDS,
                )
        await self._outbox.record_delivery(
            delivery.id,
            attempt=delivery.attempts,
            now=now,
            delivered=error is None,
            next_attempt_at=retry_at,
            error=error,
        )

    async def _payload(self, delivery: DueDelivery) -> bytes:
        record = await self._batches.get_batch(delivery.workspace_id, delivery.batch_id)
        if record is not None and record.openai is not None:
            status, _ = openai_status(record)
            return _encoder.encode(
                OpenAIBatchEvent(
                    id=f"evt_{delivery.id}",
                    type=f"batch.{status}",
                    created_at=delivery.created_at // MICROS_PER_SECOND,
                    data=BatchEventData(id=record.id),
                )
            )
        data = (
            batch_to_wire(record, self._settings.public_url.rstrip("/"))
            if record is not None
            else DeletedMessageBatch(id=delivery.batch_id)
        )
        event = WebhookEvent(
            type=delivery.event, created_at=rfc3339(delivery.created_at), data=data
        )
        return _encoder.encode(event)
