"""The in-memory store: every protocol of :mod:`batchyard.store.protocols` over plain dicts.

What it is for: unit tests of the services and the worker without a database, and trying
batchyard out (``--db memory://``) without setting one up. What it is not: durable or
shared. It lives in one process and one event loop; nothing survives the process, and two
:class:`MemoryStore` objects never see each other's data.

It keeps the same invariants as the SQL store (the conformance suite in
``tests/integration/store`` holds both to them):

* **Atomic operations**: no method awaits while it changes state, so on one event loop each
  call is a transaction; a create that fails validates everything before it changes
  anything and leaves nothing behind.
* **Fencing**: a claim bumps ``attempt``; a finish, retry or lease extension counts only
  while the request is ``running`` under that same attempt.
* **Counts add up**: every request state change goes through :meth:`_State.transition`, and
  every move to a final state through :meth:`_State.settle`, which moves the batch counters
  with it; a batch ends only in :meth:`_State.end_if_done`, exactly once, and that same call
  queues one ``message_batch.ended`` delivery per webhook of the workspace.
* **Workspaces are walls**: batches and files are looked up by ``(workspace_id, id)`` only.
* **A file is whole or absent**: an upload's content is read in full before the file is
  added in one step (this store holds everything in memory anyway).
* **Oldest first**: claimable requests sit in one heap per model, ordered by row id, so a
  claim never scans finished requests or other models' queues.
"""

from __future__ import annotations

import heapq
import random
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from batchyard import ids
from batchyard.errors import IdempotencyKeyTaken, QueueFull
from batchyard.store.fairness import Offer, ReadyBatch, choose_ready, fair_pick, interleaved
from batchyard.store.protocols import (
    BatchStore,
    FileStore,
    KeyStore,
    OutboxStore,
    QueueStore,
    RateLimitStore,
    Store,
    SubmissionStore,
    SweepStore,
)
from batchyard.store.records import (
    BATCH_ENDED_EVENT,
    BatchPage,
    BatchRecord,
    BatchStatus,
    Candidate,
    ClaimedRequest,
    DueDelivery,
    FilePage,
    FileRecord,
    FinalState,
    Finished,
    GatherPlan,
    Headers,
    NewBatch,
    NewFile,
    NewRequest,
    OpenAIBatch,
    RequestState,
    Retry,
    StoredOutcome,
    Submission,
    SubmissionState,
    SubmittedRequest,
    UnstartedState,
    UpstreamResult,
    WebhookRecord,
    closing_as,
)

#: Like the SQL column: a delivery keeps at most this much of its last error.
_ERROR_LIMIT = 500

# ---------------------------------------------------------------------------- rows


@dataclass(slots=True)
class _Request:
    row_id: int
    batch_seq: int
    custom_id: str
    model: str
    params: bytes
    state: RequestState = "queued"
    attempt: int = 0
    lease_expires_at: int | None = None
    not_before: int | None = None
    outcome: bytes | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    #: The upstream submission of a ``submitted`` request (kept once it has its result).
    submission_id: str | None = None


@dataclass(slots=True)
class _Batch:
    seq: int
    id: str
    workspace_id: int
    total: int
    created_at: int
    expires_at: int
    archives_at: int
    idempotency_key: str | None
    body_digest: str | None
    headers: Headers
    openai: OpenAIBatch | None
    priority: int
    #: The batch's requests: ``custom_id`` → row id, and the ``custom_id``s sorted for paging.
    rows: dict[str, int]
    custom_ids: list[str]
    status: BatchStatus = "in_progress"
    processing: int = 0
    counts: Counter[FinalState] = field(default_factory=Counter)
    ended_at: int | None = None
    cancel_initiated_at: int | None = None
    purged: bool = False

    def record(self) -> BatchRecord:
        return BatchRecord(
            seq=self.seq,
            id=self.id,
            workspace_id=self.workspace_id,
            status=self.status,
            total=self.total,
            processing=self.processing,
            succeeded=self.counts["succeeded"],
            errored=self.counts["errored"],
            canceled=self.counts["canceled"],
            expired=self.counts["expired"],
            created_at=self.created_at,
            expires_at=self.expires_at,
            archives_at=self.archives_at,
            ended_at=self.ended_at,
            cancel_initiated_at=self.cancel_initiated_at,
            openai=self.openai,
        )

    def closing_as(self, now: int) -> UnstartedState | None:
        return closing_as(self.status, self.expires_at, now)

    def is_open(self, now: int) -> bool:
        """Whether its queued requests may be claimed now."""
        return self.status == "in_progress" and self.closing_as(now) is None


@dataclass(slots=True)
class _Webhook:
    id: int
    workspace_id: int
    url: str
    secret: str
    created_at: int


@dataclass(slots=True)
class _Delivery:
    id: int
    webhook_id: int
    batch_id: str
    event: str
    created_at: int
    #: ``None`` once delivered or given up.
    next_attempt_at: int | None
    attempts: int = 0
    lease_expires_at: int | None = None
    delivered_at: int | None = None
    last_error: str | None = None


@dataclass(slots=True)
class _Submission:
    id: str
    model: str
    headers: Headers
    request_count: int
    created_at: int
    next_check_at: int
    lease_expires_at: int | None
    state: SubmissionState = "submitting"
    upstream_id: str | None = None
    checks: int = 0
    cancel_sent: bool = False
    #: Row ids of its requests.
    rows: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _File:
    record: FileRecord
    #: An upload's content, in the pieces it came in; empty for a generated file.
    chunks: list[bytes]


# ---------------------------------------------------------------------------- shared state


class _State:
    """All data of one store, and the rules every concern shares."""

    def __init__(self) -> None:
        self.workspaces: dict[str, int] = {}  # name → id
        self.api_keys: dict[str, int] = {}  # key hash → workspace id
        self.batches: dict[int, _Batch] = {}  # seq → batch
        self.batch_seqs: dict[tuple[int, str], int] = {}  # (workspace id, batch id) → seq
        self.batch_ids: set[str] = set()
        self.idempotency: dict[tuple[int, str], int] = {}  # (workspace id, key) → seq
        self.requests: dict[int, _Request] = {}  # row id → request
        #: Queued row ids per model and batch (seq), each a heap; may hold ids that left the
        #: queue since (settled or deleted), which a claim drops when it meets them.
        self.ready: dict[str, dict[int, list[int]]] = {}
        #: Row ids of running requests (the leases a sweep checks).
        self.running: set[int] = set()
        self.webhooks: dict[int, _Webhook] = {}
        self.deliveries: dict[int, _Delivery] = {}
        self.submissions: dict[str, _Submission] = {}
        self.files: dict[str, _File] = {}
        self._last_id: Counter[str] = Counter()

    def next_id(self, kind: str) -> int:
        """Ids start at 1 and are never reused, like autoincrement columns."""
        self._last_id[kind] += 1
        return self._last_id[kind]

    def workspace_id(self, name: str) -> int:
        """The workspace called ``name``, created on first use."""
        if name not in self.workspaces:
            self.workspaces[name] = self.next_id("workspace")
        return self.workspaces[name]

    def batch(self, workspace_id: int, batch_id: str) -> _Batch | None:
        seq = self.batch_seqs.get((workspace_id, batch_id))
        return None if seq is None else self.batches[seq]

    def requests_of(self, batch: _Batch) -> list[_Request]:
        return [self.requests[row_id] for row_id in batch.rows.values()]

    # ---------------------------------------------------------------- request states

    def transition(self, request: _Request, state: RequestState) -> None:
        """The one place a request changes state; keeps the queue and lease indexes."""
        if request.state == "running":
            self.running.discard(request.row_id)
        request.state = state
        if state == "queued":
            request.lease_expires_at = None
            heapq.heappush(
                self.ready.setdefault(request.model, {}).setdefault(request.batch_seq, []),
                request.row_id,
            )
        elif state == "running":
            self.running.add(request.row_id)
        else:
            request.lease_expires_at = None

    def settle(self, request: _Request, state: FinalState, outcome: bytes | None = None) -> _Batch:
        """Move a request to a final state and count it in its batch; returns the batch.

        The caller then calls :meth:`end_if_done` on the batch, once its change is complete.
        """
        self.transition(request, state)
        request.outcome = outcome
        batch = self.batches[request.batch_seq]
        batch.processing -= 1
        batch.counts[state] += 1
        return batch

    def settle_queued(self, batch: _Batch, state: UnstartedState, now: int) -> int:
        """Settle every queued request of ``batch`` as ``state``; ends the batch if done."""
        queued = [r for r in self.requests_of(batch) if r.state == "queued"]
        for request in queued:
            self.settle(request, state)
        self.end_if_done(batch, now)
        return len(queued)

    def end_if_done(self, batch: _Batch, now: int) -> None:
        """End a batch whose last request settled, exactly once, queueing its event."""
        if batch.processing == 0 and batch.status != "ended":
            batch.status = "ended"
            batch.ended_at = now
            self.enqueue_event(batch, BATCH_ENDED_EVENT, now)

    def enqueue_event(self, batch: _Batch, event: str, now: int) -> None:
        """One outbox delivery per webhook of the batch's workspace, due now."""
        for webhook in self.webhooks.values():
            if webhook.workspace_id == batch.workspace_id:
                delivery_id = self.next_id("delivery")
                self.deliveries[delivery_id] = _Delivery(
                    id=delivery_id,
                    webhook_id=webhook.id,
                    batch_id=batch.id,
                    event=event,
                    created_at=now,
                    next_attempt_at=now,
                )

    def held(self, row_id: int, attempt: int) -> _Request | None:
        """The request if ``attempt`` still holds it (the fence), else ``None``."""
        request = self.requests.get(row_id)
        if request is None or request.state != "running" or request.attempt != attempt:
            return None
        return request


# ---------------------------------------------------------------------------- concerns


class _Keys:
    def __init__(self, state: _State) -> None:
        self._s = state

    async def create_api_key(
        self, workspace_name: str, key_hash: str, key_hint: str, now: int
    ) -> None:
        if key_hash in self._s.api_keys:
            raise ValueError("an API key with this hash exists already")
        self._s.api_keys[key_hash] = self._s.workspace_id(workspace_name)

    async def workspace_for_key(self, key_hash: str) -> int | None:
        return self._s.api_keys.get(key_hash)


class _Batches:
    def __init__(self, state: _State) -> None:
        self._s = state

    async def create_batch(self, batch: NewBatch, items: Sequence[NewRequest]) -> BatchRecord:
        s = self._s
        # Check everything first: a refused create changes nothing.
        key = batch.idempotency_key
        if key is not None and (batch.workspace_id, key) in s.idempotency:
            raise IdempotencyKeyTaken(key)
        if batch.id in s.batch_ids:
            raise ValueError(f"batch id {batch.id!r} exists already")
        custom_ids = [item.custom_id for item in items]
        if len(set(custom_ids)) != len(custom_ids):
            raise ValueError("custom_id values of a batch must be unique")
        for limit in batch.queue_limits:
            queued = sum(
                1
                for request in s.requests.values()
                if request.state == "queued"
                and request.model in limit.names
                and (owner := s.batches[request.batch_seq]).workspace_id == batch.workspace_id
                and owner.status == "in_progress"
            )
            if queued + limit.adding > limit.limit:
                raise QueueFull(limit.model, queued, limit.adding, limit.limit)

        seq = s.next_id("batch")
        rows = {item.custom_id: s.next_id("request") for item in items}
        stored = _Batch(
            seq=seq,
            id=batch.id,
            workspace_id=batch.workspace_id,
            total=len(items),
            processing=len(items),
            created_at=batch.created_at,
            expires_at=batch.expires_at,
            archives_at=batch.archives_at,
            idempotency_key=key,
            body_digest=batch.body_digest,
            headers=batch.headers,
            openai=batch.openai,
            priority=batch.priority,
            rows=rows,
            custom_ids=sorted(custom_ids),
        )
        if not items:  # nothing to run (an OpenAI batch whose input file was refused)
            stored.status, stored.ended_at = "ended", batch.created_at
        s.batches[seq] = stored
        s.batch_seqs[(batch.workspace_id, batch.id)] = seq
        s.batch_ids.add(batch.id)
        if key is not None:
            s.idempotency[(batch.workspace_id, key)] = seq
        for item in items:
            request = _Request(
                row_id=rows[item.custom_id],
                batch_seq=seq,
                custom_id=item.custom_id,
                model=item.model,
                params=item.params,
            )
            s.requests[request.row_id] = request
            s.transition(request, "queued")
        return stored.record()

    async def find_idempotent(
        self, workspace_id: int, idempotency_key: str
    ) -> tuple[BatchRecord, str | None] | None:
        seq = self._s.idempotency.get((workspace_id, idempotency_key))
        if seq is None:
            return None
        batch = self._s.batches[seq]
        return batch.record(), batch.body_digest

    async def get_batch(self, workspace_id: int, batch_id: str) -> BatchRecord | None:
        batch = self._s.batch(workspace_id, batch_id)
        return None if batch is None else batch.record()

    async def list_batches(
        self,
        workspace_id: int,
        *,
        limit: int,
        after_id: str | None,
        before_id: str | None,
        openai: bool = False,
    ) -> BatchPage | None:
        seqs = sorted(
            (
                b.seq
                for b in self._s.batches.values()
                if b.workspace_id == workspace_id and (b.openai is not None) == openai
            ),
            reverse=True,
        )
        cursor_id = after_id or before_id
        if cursor_id is not None:
            cursor = self._s.batch(workspace_id, cursor_id)
            if cursor is None or (cursor.openai is not None) != openai:
                return None
            if after_id is not None:
                seqs = [seq for seq in seqs if seq < cursor.seq]
            else:
                # Walking towards newer batches: the nearest ones, still shown newest first.
                seqs = [seq for seq in seqs if seq > cursor.seq][::-1]
        page = [self._s.batches[seq].record() for seq in seqs[:limit]]
        if before_id is not None:
            page.reverse()
        return BatchPage(batches=page, has_more=len(seqs) > limit)

    async def cancel_batch(self, workspace_id: int, batch_id: str, now: int) -> BatchRecord | None:
        batch = self._s.batch(workspace_id, batch_id)
        if batch is None:
            return None
        if batch.status == "in_progress":
            batch.status = "canceling"
            batch.cancel_initiated_at = now
            settle_as = batch.closing_as(now)
            assert settle_as is not None  # a canceling batch always closes
            self._s.settle_queued(batch, settle_as, now)
        return batch.record()

    async def delete_batch(self, workspace_id: int, batch_id: str) -> BatchRecord | None:
        s = self._s
        batch = s.batch(workspace_id, batch_id)
        if batch is None:
            return None
        if batch.status == "ended":
            # Ended: nothing is queued or running, so no index still points at its rows
            # except stale heap entries, which a claim skips. Its outbox events stay.
            for row_id in batch.rows.values():
                del s.requests[row_id]
            del s.batches[batch.seq]
            del s.batch_seqs[(workspace_id, batch_id)]
            s.batch_ids.discard(batch_id)
            if batch.idempotency_key is not None:
                del s.idempotency[(workspace_id, batch.idempotency_key)]
        return batch.record()

    async def iter_outcomes(
        self, batch_seq: int, *, page_size: int = 1000
    ) -> AsyncIterator[list[StoredOutcome]]:
        last: str | None = None
        while True:
            page = self._page(batch_seq, after=last, limit=page_size)
            if not page:
                return
            yield page
            last = page[-1].custom_id

    def _page(self, batch_seq: int, *, after: str | None, limit: int) -> list[StoredOutcome]:
        """Up to ``limit`` requests after the ``custom_id`` ``after``, read at once."""
        batch = self._s.batches.get(batch_seq)
        if batch is None:  # deleted, maybe while a client was reading
            return []
        start = 0 if after is None else bisect_right(batch.custom_ids, after)
        page = []
        for custom_id in batch.custom_ids[start : start + limit]:
            request = self._s.requests[batch.rows[custom_id]]
            page.append(StoredOutcome(custom_id, request.state, request.outcome))
        return page

    async def record_result_files(
        self, batch_seq: int, output_file_id: str | None, error_file_id: str | None, now: int
    ) -> None:
        batch = self._s.batches.get(batch_seq)
        if batch is not None and batch.openai is not None and not batch.openai.files_made:
            batch.openai = replace(
                batch.openai,
                files_made=True,
                output_file_id=output_file_id,
                error_file_id=error_file_id,
            )

    async def token_totals(self, batch_seq: int) -> tuple[int, int]:
        batch = self._s.batches.get(batch_seq)
        if batch is None:
            return 0, 0
        stored = [r for r in self._s.requests_of(batch) if r.outcome is not None]
        return sum(r.input_tokens for r in stored), sum(r.output_tokens for r in stored)

    async def count_states(self, batch_seq: int) -> dict[str, int]:
        batch = self._s.batches.get(batch_seq)
        if batch is None:
            return {}
        return dict(Counter(request.state for request in self._s.requests_of(batch)))


class _Queue:
    def __init__(self, state: _State) -> None:
        self._s = state
        self._rng = random.Random()

    async def claim(
        self,
        *,
        limit: int,
        now: int,
        lease_until: int,
        models: Sequence[str] | None = None,
        other_models: bool = False,
    ) -> list[ClaimedRequest]:
        s = self._s
        wanted = set(models or ())
        heaps: defaultdict[int, list[list[int]]] = defaultdict(list)  # batch seq → its heaps
        for model, by_batch in s.ready.items():
            if models is None or (model in wanted) != other_models:
                for seq, heap in by_batch.items():
                    if heap:
                        heaps[seq].append(heap)
        ready: list[ReadyBatch] = []
        for seq in heaps:
            batch = s.batches.get(seq)
            if batch is None or batch.status == "ended":  # nothing of it will run again
                for by_batch in s.ready.values():
                    by_batch.pop(seq, None)
            elif batch.is_open(now) and self._has_due(heaps[seq], now):
                ready.append(ReadyBatch(batch.seq, batch.workspace_id, batch.priority))
        offers: list[Offer] = []
        popped: list[_Request] = []  # put back afterwards, except those taken
        for chosen_batch, share in choose_ready(ready, limit, self._rng):
            offered = 0
            while offered < share and (live := [h for h in heaps[chosen_batch.seq] if h]):
                request = s.requests.get(heapq.heappop(min(live, key=lambda heap: heap[0])))
                if request is None or request.state != "queued":
                    continue  # left the queue since it was pushed
                popped.append(request)
                if request.not_before is None or request.not_before <= now:
                    offers.append(
                        Offer(request.row_id, chosen_batch.seq, chosen_batch.workspace_id)
                    )
                    offered += 1
        chosen = {offer.row_id for offer in fair_pick(offers, limit, self._rng)}
        taken = [request for request in popped if request.row_id in chosen]
        for request in popped:
            if request.row_id not in chosen:
                heapq.heappush(s.ready[request.model][request.batch_seq], request.row_id)
        for request in taken:
            s.transition(request, "running")
            request.attempt += 1
            request.lease_expires_at = lease_until
            request.not_before = None
        return interleaved(
            [
                ClaimedRequest(
                    row_id=r.row_id,
                    batch_seq=r.batch_seq,
                    custom_id=r.custom_id,
                    attempt=r.attempt,
                    params=r.params,
                    headers=s.batches[r.batch_seq].headers,
                    chat=s.batches[r.batch_seq].openai is not None,
                )
                for r in taken
            ]
        )

    def _has_due(self, heaps: list[list[int]], now: int) -> bool:
        """Whether a queued request in ``heaps`` may run ``now`` (most often the first one
        looked at; a batch whose requests all wait for a retry time is not ready)."""
        for heap in heaps:
            for row_id in heap:
                request = self._s.requests.get(row_id)
                if (
                    request is not None
                    and request.state == "queued"
                    and (request.not_before is None or request.not_before <= now)
                ):
                    return True
        return False

    async def closing_batches(self, now: int) -> dict[int, UnstartedState]:
        closing: dict[int, UnstartedState] = {}
        for batch in self._s.batches.values():
            settle_as = batch.closing_as(now)
            if settle_as is not None:
                closing[batch.seq] = settle_as
        return closing

    async def extend_leases(self, leases: Iterable[tuple[int, int]], until: int) -> None:
        for row_id, attempt in leases:
            request = self._s.held(row_id, attempt)
            if request is not None:
                request.lease_expires_at = until

    async def finish(self, finished: Sequence[Finished], retries: Sequence[Retry], now: int) -> int:
        s = self._s
        touched: dict[int, _Batch] = {}
        applied = 0
        for item in finished:
            request = s.held(item.row_id, item.attempt)
            if request is None:
                continue  # fenced off: another attempt holds it, or it is settled
            batch = s.settle(request, item.state, item.outcome)
            request.input_tokens = item.input_tokens
            request.output_tokens = item.output_tokens
            touched[batch.seq] = batch
            applied += 1
        for retry in retries:
            request = s.held(retry.row_id, retry.attempt)
            if request is None:
                continue
            s.transition(request, "queued")
            request.not_before = retry.not_before
            if retry.unstarted:
                request.attempt -= 1
        for batch in touched.values():
            s.end_if_done(batch, now)
        return applied


class _Outbox:
    def __init__(self, state: _State) -> None:
        self._s = state

    async def add_webhook(self, workspace_name: str, url: str, secret: str, now: int) -> int:
        webhook_id = self._s.next_id("webhook")
        self._s.webhooks[webhook_id] = _Webhook(
            id=webhook_id,
            workspace_id=self._s.workspace_id(workspace_name),
            url=url,
            secret=secret,
            created_at=now,
        )
        return webhook_id

    async def list_webhooks(self, workspace_name: str) -> list[WebhookRecord]:
        workspace_id = self._s.workspaces.get(workspace_name)
        return [
            WebhookRecord(id=w.id, url=w.url, created_at=w.created_at)
            for w in sorted(self._s.webhooks.values(), key=lambda w: w.id)
            if w.workspace_id == workspace_id
        ]

    async def remove_webhook(self, workspace_name: str, webhook_id: int) -> bool:
        webhook = self._s.webhooks.get(webhook_id)
        if webhook is None or webhook.workspace_id != self._s.workspaces.get(workspace_name):
            return False
        del self._s.webhooks[webhook_id]
        for delivery in list(self._s.deliveries.values()):
            if delivery.webhook_id == webhook_id:
                del self._s.deliveries[delivery.id]
        return True

    async def claim_deliveries(
        self, *, limit: int, now: int, lease_until: int, max_attempts: int
    ) -> list[DueDelivery]:
        due = sorted(
            (
                d
                for d in self._s.deliveries.values()
                if d.next_attempt_at is not None
                and d.next_attempt_at <= now
                and d.attempts < max_attempts
                and (d.lease_expires_at is None or d.lease_expires_at < now)
            ),
            key=lambda d: (d.next_attempt_at, d.id),
        )[:limit]
        claimed = []
        for delivery in due:
            delivery.lease_expires_at = lease_until
            delivery.attempts += 1
            webhook = self._s.webhooks[delivery.webhook_id]
            claimed.append(
                DueDelivery(
                    id=delivery.id,
                    url=webhook.url,
                    secret=webhook.secret,
                    workspace_id=webhook.workspace_id,
                    batch_id=delivery.batch_id,
                    event=delivery.event,
                    attempts=delivery.attempts,
                    created_at=delivery.created_at,
                )
            )
        return claimed

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
        delivery = self._s.deliveries.get(delivery_id)
        if delivery is None or delivery.attempts != attempt or delivery.delivered_at is not None:
            return  # a newer attempt holds it, or it is delivered already
        delivery.delivered_at = now if delivered else None
        delivery.next_attempt_at = None if delivered else next_attempt_at
        delivery.lease_expires_at = None
        delivery.last_error = None if error is None else error[:_ERROR_LIMIT]


class _Sweeps:
    def __init__(self, state: _State) -> None:
        self._s = state

    async def requeue_expired_leases(
        self, now: int, *, max_attempts: int, exhausted: Callable[[], bytes]
    ) -> int:
        s = self._s
        lost = [
            s.requests[row_id]
            for row_id in sorted(s.running)
            if (lease := s.requests[row_id].lease_expires_at) is not None and lease < now
        ]
        touched: dict[int, _Batch] = {}
        for request in lost:
            if request.attempt < max_attempts:
                s.transition(request, "queued")
            else:
                batch = s.settle(request, "errored", exhausted())
                touched[batch.seq] = batch
        for batch in touched.values():
            s.end_if_done(batch, now)
        return len(lost)

    async def settle_closing_batches(self, now: int) -> int:
        settled = 0
        for batch in list(self._s.batches.values()):
            settle_as = batch.closing_as(now)
            if settle_as is not None:
                settled += self._s.settle_queued(batch, settle_as, now)
        return settled

    async def purge_expired_files(self, now: int, *, limit: int) -> int:
        expired = sorted(
            (
                stored.record
                for stored in self._s.files.values()
                if stored.record.expires_at is not None and stored.record.expires_at <= now
            ),
            key=lambda record: (record.expires_at or 0, record.id),
        )[:limit]
        for record in expired:
            del self._s.files[record.id]
        return len(expired)

    async def purge_archived(self, now: int, *, limit: int) -> int:
        s = self._s
        due = [
            batch
            for batch in s.batches.values()
            if batch.status == "ended" and batch.archives_at <= now and not batch.purged
        ]
        if not due:
            return 0
        batch = min(due, key=lambda batch: batch.seq)
        if not batch.rows:
            batch.purged = True
            return 1
        removed = list(batch.rows.items())[:limit]
        for custom_id, row_id in removed:
            del batch.rows[custom_id]
            del s.requests[row_id]
        batch.custom_ids = sorted(batch.rows)
        return len(removed)


_OPEN_SUBMISSION = ("submitting", "submitted")


class _Submissions:
    def __init__(self, state: _State) -> None:
        self._s = state

    async def gather(
        self,
        *,
        model: str,
        names: Sequence[str],
        now: int,
        lease_until: int,
        limit: int,
        plan: GatherPlan,
    ) -> list[Submission]:
        s = self._s
        queued = sorted(
            row_id
            for name in set(names)
            for heap in s.ready.get(name, {}).values()
            for row_id in heap
        )
        candidates: list[Candidate] = []
        for row_id in queued:
            request = s.requests.get(row_id)
            if request is None or request.state != "queued":
                continue  # a stale heap entry
            batch = s.batches[request.batch_seq]
            due = request.not_before is None or request.not_before <= now
            if due and batch.is_open(now):
                candidates.append(
                    Candidate(row_id, len(request.params), batch.headers, batch.created_at)
                )
                if len(candidates) == limit:
                    break
        by_row = {candidate.row_id: candidate for candidate in candidates}
        made = []
        for group in plan(candidates):
            submission = _Submission(
                id=ids.submission_id(),
                model=model,
                headers=by_row[group[0]].headers,
                request_count=len(group),
                created_at=now,
                next_check_at=now,
                lease_expires_at=lease_until,
                rows=list(group),
            )
            s.submissions[submission.id] = submission
            for row_id in group:
                request = s.requests[row_id]
                s.transition(request, "submitted")
                request.submission_id = submission.id
                request.not_before = None
            made.append(self._record(submission))
        return made

    async def claim_submissions(
        self, *, model: str, now: int, lease_until: int, limit: int
    ) -> list[Submission]:
        due = sorted(
            (
                sub
                for sub in self._s.submissions.values()
                if sub.model == model
                and sub.state in _OPEN_SUBMISSION
                and sub.next_check_at <= now
                and (sub.lease_expires_at is None or sub.lease_expires_at < now)
            ),
            key=lambda sub: sub.next_check_at,
        )[:limit]
        for sub in due:
            sub.lease_expires_at = lease_until
        return [self._record(sub) for sub in due]

    async def submitted_requests(
        self, submission_id: str, *, with_params: bool
    ) -> list[SubmittedRequest]:
        return [
            SubmittedRequest(
                r.row_id, r.model, r.params, self._s.batches[r.batch_seq].openai is not None
            )
            if with_params
            else SubmittedRequest(r.row_id, r.model, b"")
            for r in self._waiting(submission_id)
        ]

    async def mark_submitted(
        self, submission_id: str, upstream_id: str, *, now: int, next_check_at: int
    ) -> str | None:
        sub = self._s.submissions.get(submission_id)
        if sub is None:
            return None
        if sub.state == "submitting":
            sub.state = "submitted"
            sub.upstream_id = upstream_id
            sub.next_check_at = next_check_at
            sub.checks = 0
            sub.lease_expires_at = None
        return sub.upstream_id if sub.state == "submitted" else None

    async def reschedule(
        self, submission_id: str, *, next_check_at: int, cancel_sent: bool, now: int
    ) -> None:
        sub = self._s.submissions.get(submission_id)
        if sub is None or sub.state not in _OPEN_SUBMISSION:
            return
        sub.next_check_at = next_check_at
        sub.checks += 1
        sub.lease_expires_at = None
        sub.cancel_sent = sub.cancel_sent or cancel_sent

    async def record_results(
        self, submission_id: str, results: Sequence[UpstreamResult], *, now: int, lease_until: int
    ) -> int:
        s = self._s
        touched: dict[int, _Batch] = {}
        written = 0
        for result in results:
            request = s.requests.get(result.row_id)
            if request is None or not self._is_waiting(request, submission_id):
                continue
            batch = s.settle(request, result.state, result.outcome)
            request.input_tokens = result.input_tokens
            request.output_tokens = result.output_tokens
            touched[batch.seq] = batch
            written += 1
        for batch in touched.values():
            s.end_if_done(batch, now)
        if (sub := s.submissions.get(submission_id)) is not None:
            sub.lease_expires_at = lease_until
        return written

    async def close_submission(
        self,
        submission_id: str,
        state: Literal["ended", "failed"],
        *,
        leftover: Callable[[], bytes],
        now: int,
    ) -> int:
        s = self._s
        waiting = self._waiting(submission_id)
        touched = {s.settle(request, "errored", leftover()).seq: request for request in waiting}
        for seq in touched:
            s.end_if_done(s.batches[seq], now)
        sub = s.submissions.get(submission_id)
        if sub is not None and sub.state in _OPEN_SUBMISSION:
            sub.state = state
            sub.lease_expires_at = None
        return len(waiting)

    def _waiting(self, submission_id: str) -> list[_Request]:
        sub = self._s.submissions.get(submission_id)
        if sub is None:
            return []
        found = (self._s.requests.get(row_id) for row_id in sub.rows)
        return [r for r in found if r is not None and self._is_waiting(r, submission_id)]

    @staticmethod
    def _is_waiting(request: _Request, submission_id: str) -> bool:
        return request.state == "submitted" and request.submission_id == submission_id

    def _record(self, sub: _Submission) -> Submission:
        waiting = self._waiting(sub.id)
        cancel_wanted = (
            sub.state == "submitted"
            and not sub.cancel_sent
            and bool(waiting)
            and all(self._s.batches[r.batch_seq].status != "in_progress" for r in waiting)
        )
        return Submission(
            id=sub.id,
            model=sub.model,
            state=sub.state,
            upstream_id=sub.upstream_id,
            headers=sub.headers,
            request_count=sub.request_count,
            created_at=sub.created_at,
            checks=sub.checks,
            cancel_wanted=cancel_wanted,
            cancel_sent=sub.cancel_sent,
        )


# ---------------------------------------------------------------------------- the bundle


class _RateLimits:
    """Shared rate-limit states; a change never awaits, so it is atomic on one event loop."""

    def __init__(self) -> None:
        self._states: dict[str, bytes] = {}

    async def update_rate_limit(self, key: str, change: Callable[[bytes | None], bytes]) -> None:
        self._states[key] = change(self._states.get(key))


def _file_record(
    new: NewFile, *, size: int | None, batch_seq: int | None = None, part: str | None = None
) -> FileRecord:
    return FileRecord(
        id=new.id,
        workspace_id=new.workspace_id,
        filename=new.filename,
        purpose=new.purpose,
        bytes=size,
        created_at=new.created_at,
        expires_at=new.expires_at,
        status="processed",
        batch_seq=batch_seq,
        batch_part=part,
    )


class _Files:
    def __init__(self, state: _State) -> None:
        self._s = state

    async def create_file(self, new: NewFile, content: AsyncIterator[bytes]) -> FileRecord:
        chunks = [piece async for piece in content if piece]
        record = _file_record(new, size=sum(len(piece) for piece in chunks))
        self._s.files[new.id] = _File(record, chunks)
        return record

    async def get_file(self, workspace_id: int, file_id: str) -> FileRecord | None:
        stored = self._find(workspace_id, file_id)
        return stored.record if stored else None

    async def list_files(
        self,
        workspace_id: int,
        *,
        purpose: str | None,
        after: str | None,
        limit: int,
        order: Literal["asc", "desc"],
    ) -> FilePage | None:
        records = sorted(
            (
                stored.record
                for stored in self._s.files.values()
                if stored.record.workspace_id == workspace_id
                and (purpose is None or stored.record.purpose == purpose)
            ),
            key=lambda record: (record.created_at, record.id),
            reverse=order == "desc",
        )
        if after is not None:
            cursor = self._find(workspace_id, after)
            if cursor is None:
                return None
            position = (cursor.record.created_at, cursor.record.id)
            records = [
                record
                for record in records
                if (
                    (record.created_at, record.id) < position
                    if order == "desc"
                    else (record.created_at, record.id) > position
                )
            ]
        return FilePage(files=records[:limit], has_more=len(records) > limit)

    async def delete_file(self, workspace_id: int, file_id: str) -> FileRecord | None:
        stored = self._find(workspace_id, file_id)
        if stored is None:
            return None
        del self._s.files[file_id]
        return stored.record

    async def iter_content(self, file_id: str) -> AsyncIterator[bytes]:
        stored = self._s.files.get(file_id)
        for piece in stored.chunks if stored else ():
            if self._s.files.get(file_id) is not stored:  # deleted while being read
                return
            yield piece

    async def add_generated_file(self, new: NewFile, batch_seq: int, part: str) -> FileRecord:
        for stored in self._s.files.values():
            if stored.record.batch_seq == batch_seq and stored.record.batch_part == part:
                return stored.record
        record = _file_record(new, size=None, batch_seq=batch_seq, part=part)
        self._s.files[new.id] = _File(record, [])
        return record

    async def set_file_bytes(self, file_id: str, size: int) -> None:
        if stored := self._s.files.get(file_id):
            stored.record = replace(stored.record, bytes=size)

    def _find(self, workspace_id: int, file_id: str) -> _File | None:
        stored = self._s.files.get(file_id)
        return stored if stored and stored.record.workspace_id == workspace_id else None


class MemoryStore:
    """A :class:`~batchyard.store.protocols.Store` held in this process's memory."""

    def __init__(self) -> None:
        state = _State()
        self._keys = _Keys(state)
        self._batches = _Batches(state)
        self._queue = _Queue(state)
        self._outbox = _Outbox(state)
        self._sweeps = _Sweeps(state)
        self._submissions = _Submissions(state)
        self._rate_limits = _RateLimits()
        self._files = _Files(state)

    @property
    def keys(self) -> KeyStore:
        return self._keys

    @property
    def batches(self) -> BatchStore:
        return self._batches

    @property
    def queue(self) -> QueueStore:
        return self._queue

    @property
    def outbox(self) -> OutboxStore:
        return self._outbox

    @property
    def sweeps(self) -> SweepStore:
        return self._sweeps

    @property
    def submissions(self) -> SubmissionStore:
        return self._submissions

    @property
    def rate_limits(self) -> RateLimitStore:
        return self._rate_limits

    @property
    def files(self) -> FileStore:
        return self._files

    async def close(self) -> None:
        """Nothing to release: the data goes when the store object does."""


#: mypy checks here that the memory store satisfies the protocol, structurally.
_CHECK: type[Store] = MemoryStore

__all__ = ["MemoryStore"]
