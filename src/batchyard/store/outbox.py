"""Webhook registrations and the outbox of events to deliver.

Invariants enforced here:

* **Never lost**: events are written by :mod:`batchyard.store.ledger` in the transaction that
  ends a batch, and stay until delivered or out of attempts.
* **One attempt at a time**: a delivery is leased to one process per attempt, and only the
  latest attempt may record its result (fenced by the attempt count, like request
  outcomes). A delivered event stays delivered. Delivery is at least once: receivers dedupe
  on ``webhook-id``.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, or_, select, update

from batchyard.store.database import Database
from batchyard.store.records import DueDelivery, WebhookRecord
from batchyard.store.rows import workspace_named
from batchyard.store.tables import webhook_deliveries, webhooks, workspaces


class SqlOutbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add_webhook(self, workspace_name: str, url: str, secret: str, now: int) -> int:
        async with self._db.writer.begin() as conn:
            workspace_id = await workspace_named(conn, workspace_name, now)
            webhook_id: int = await conn.scalar(
                insert(webhooks)
                .values(workspace_id=workspace_id, url=url, secret=secret, created_at=now)
                .returning(webhooks.c.id)
            )
        return webhook_id

    async def list_webhooks(self, workspace_name: str) -> list[WebhookRecord]:
        async with self._db.reader.connect() as conn:
            rows = (
                await conn.execute(
                    select(webhooks.c.id, webhooks.c.url, webhooks.c.created_at)
                    .select_from(webhooks.join(workspaces))
                    .where(workspaces.c.name == workspace_name)
                    .order_by(webhooks.c.id)
                )
            ).all()
        return [WebhookRecord(id=row.id, url=row.url, created_at=row.created_at) for row in rows]

    async def remove_webhook(self, workspace_name: str, webhook_id: int) -> bool:
        async with self._db.writer.begin() as conn:
            owned = (
                select(webhooks.c.id)
                .join(workspaces)
                .where(webhooks.c.id == webhook_id, workspaces.c.name == workspace_name)
            )
            if await conn.scalar(owned) is None:
                return False
            await conn.execute(
                delete(webhook_deliveries).where(webhook_deliveries.c.webhook_id == webhook_id)
            )
            await conn.execute(delete(webhooks).where(webhooks.c.id == webhook_id))
        return True

    async def claim_deliveries(
        self, *, limit: int, now: int, lease_until: int, max_attempts: int
    ) -> list[DueDelivery]:
        """An event whose attempts ran out while a process died mid-attempt is not claimed
        again."""
        due = (
            select(webhook_deliveries.c.id)
            .where(
                webhook_deliveries.c.next_attempt_at <= now,
                webhook_deliveries.c.attempts < max_attempts,
                or_(
                    webhook_deliveries.c.lease_expires_at.is_(None),
                    webhook_deliveries.c.lease_expires_at < now,
                ),
            )
            .order_by(webhook_deliveries.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self._db.writer.begin() as conn:
            ids = (await conn.scalars(due)).all()
            if not ids:
                return []
            await conn.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.id.in_(ids))
                .values(lease_expires_at=lease_until, attempts=webhook_deliveries.c.attempts + 1)
            )
            rows = (
                await conn.execute(
                    select(
                        webhook_deliveries,
                        webhooks.c.url,
                        webhooks.c.secret,
                        webhooks.c.workspace_id,
                    )
                    .select_from(webhook_deliveries.join(webhooks))
                    .where(webhook_deliveries.c.id.in_(ids))
                )
            ).all()
        return [
            DueDelivery(
                id=row.id,
                url=row.url,
                secret=row.secret,
                workspace_id=row.workspace_id,
                batch_id=row.batch_id,
                event=row.event,
                attempts=row.attempts,
                created_at=row.created_at,
            )
            for row in rows
        ]

    async def record_delivery(
        self,
        delivery_id: int,
        *,
        attempt: int,
        now: int,
        delivered: bool,
        next_attempt_at: int | None,
        error: str | None,
    ) -> None:
        async with self._db.writer.begin() as conn:
            await conn.execute(
                update(webhook_deliveries)
                .where(
                    webhook_deliveries.c.id == delivery_id,
                    webhook_deliveries.c.attempts == attempt,
                    webhook_deliveries.c.delivered_at.is_(None),
                )
                .values(
                    delivered_at=now if delivered else None,
                    next_attempt_at=None if delivered else next_attempt_at,
                    lease_expires_at=None,
                    last_error=None if error is None else error[:500],
                )
            )
