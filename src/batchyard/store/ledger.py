"""Moving requests into final states: the one place that keeps the batch counters.

Invariants enforced here, for every caller (completions, cancels, expiry, lost leases):

* **Counts add up**: a batch's counters move in the caller's transaction, together with the
  request states they count, so ``processing + succeeded + errored + canceled + expired ==
  total`` always holds for any reader.
* **A batch ends exactly once**: ``status`` flips to ``ended`` in the transaction that takes
  ``processing`` to zero, guarded by ``status <> 'ended'``; that same transaction writes one
  ``message_batch.ended`` outbox row per webhook of the batch's workspace, so the event is
  never lost and never doubled.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from sqlalchemy import literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from batchyard.store.notices import notify_events
from batchyard.store.records import BATCH_ENDED_EVENT, FINAL_STATES, UnstartedState
from batchyard.store.tables import batches, requests, webhook_deliveries, webhooks

#: Request counts per batch ``seq`` and final state.
Tally = Mapping[int, Counter[str]]


async def apply_tally(conn: AsyncConnection, tally: Tally, now: int) -> None:
    """Move counted requests out of ``processing`` and end batches that reach zero."""
    for seq, counts in tally.items():
        moved = sum(counts.values())
        if moved:
            values: dict[str, Any] = {
                name: batches.c[name] + counts[name] for name in FINAL_STATES if counts[name]
            }
            values["processing"] = batches.c.processing - moved
            await conn.execute(update(batches).where(batches.c.seq == seq).values(values))
        ended = await conn.execute(
            update(batches)
            .where(batches.c.seq == seq, batches.c.processing == 0, batches.c.status != "ended")
            .values(status="ended", ended_at=now)
        )
        if ended.rowcount:
            await _enqueue_event(conn, seq, BATCH_ENDED_EVENT, now)


async def settle_queued(conn: AsyncConnection, seq: int, state: UnstartedState, now: int) -> int:
    """End every queued request of a batch as ``state`` (it closed before they ran)."""
    count = (
        await conn.execute(
            update(requests)
            .where(requests.c.batch_seq == seq, requests.c.state == "queued")
            .values(state=state)
        )
    ).rowcount
    await apply_tally(conn, {seq: Counter({state: count})}, now)
    return count


async def _enqueue_event(conn: AsyncConnection, seq: int, event: str, now: int) -> None:
    """One outbox row per webhook of the batch's workspace, in the caller's transaction,
    and a notice to webhook senders in other processes."""
    await notify_events(conn)
    await conn.execute(
        webhook_deliveries.insert().from_select(
            ["webhook_id", "batch_id", "event", "created_at", "next_attempt_at"],
            select(webhooks.c.id, batches.c.id, literal(event), literal(now), literal(now))
            .select_from(webhooks.join(batches, batches.c.workspace_id == webhooks.c.workspace_id))
            .where(batches.c.seq == seq),
        )
    )
