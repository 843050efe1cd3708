"""What the services and the worker need from storage: small protocols and their bundle.

Everything above the store depends on these, never on an implementation. Two implement
them: the SQL store (:mod:`batchyard.store.sql`, SQLite and PostgreSQL) and the in-memory
store (:mod:`batchyard.store.memory`, for unit tests and trying things out). The same
conformance suite (``tests/integration/store``) holds all of them to the invariants below.

Invariants every implementation keeps:

* **Acknowledged means durable**: a batch and all its requests appear together or not at all.
* **Exactly one result per request**: a claim bumps ``attempt``; a completion or retry counts
  only while the request is still ``running`` under that attempt (fencing).
* **Counts add up**: ``processing + succeeded + errored + canceled + expired == total``, moved
  together with the request states they count.
* **A batch ends exactly once**, when ``processing`` reaches zero, and that same change
  queues one ``message_batch.ended`` event per webhook of its workspace.
* **Workspaces are walls**: every lookup by a batch or file id is scoped to a workspace.
* **A file is whole or absent**: an upload's row and all its content appear together.

Times are integer microseconds since the epoch, always passed in by the caller, so tests
control the clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Literal, Protocol

from batchyard.store.records import (
    BatchPage,
    BatchRecord,
    ClaimedRequest,
    DueDelivery,
    FilePage,
    FileRecord,
    Finished,
    GatherPlan,
    NewBatch,
    NewFile,
    NewRequest,
    Retry,
    StoredOutcome,
    Submission,
    SubmittedRequest,
    UnstartedState,
    UpstreamResult,
    WebhookRecord,
)


class KeyStore(Protocol):
    """Workspaces and their API keys (stored as hashes only)."""

    async def create_api_key(
        self, workspace_name: str, key_hash: str, key_hint: str, now: int
    ) -> None:
        """Store a key's hash under ``workspace_name``, creating the workspace if new."""
        ...

    async def workspace_for_key(self, key_hash: str) -> int | None: ...


class BatchStore(Protocol):
    """Batches as the API sees them: create, look up, cancel, delete, read outcomes."""

    async def create_batch(self, batch: NewBatch, items: Sequence[NewRequest]) -> BatchRecord:
        """Insert the batch and every request atomically.

        Raises :class:`~batchyard.errors.IdempotencyKeyTaken` if a batch of the workspace
        already has ``batch.idempotency_key``.
        """
        ...

    async def find_idempotent(
        self, workspace_id: int, idempotency_key: str
    ) -> tuple[BatchRecord, str | None] | None:
        """The batch an earlier create with this key made, and that create's body digest."""
        ...

    async def get_batch(self, workspace_id: int, batch_id: str) -> BatchRecord | None: ...

    async def list_batches(
        self,
        workspace_id: int,
        *,
        limit: int,
        after_id: str | None,
        before_id: str | None,
        openai: bool = False,
    ) -> BatchPage | None:
        """Newest first, the batches of one surface (``openai``: those made through the OpenAI
        routes, else the others). ``None`` when a cursor names no batch of this workspace and
        surface."""
        ...

    async def cancel_batch(self, workspace_id: int, batch_id: str, now: int) -> BatchRecord | None:
        """Mark an open batch ``canceling`` and settle its queued requests (see
        :func:`~batchyard.store.records.closing_as`); a no-op on a canceling or ended batch.
        The batch ends now if nothing of it is running."""
        ...

    async def delete_batch(self, workspace_id: int, batch_id: str) -> BatchRecord | None:
        """Delete an ended batch with its requests and outcomes; return what was found.

        A batch that has not ended is returned untouched so the caller can refuse.
        """
        ...

    def iter_outcomes(
        self, batch_seq: int, *, page_size: int = 1000
    ) -> AsyncIterator[list[StoredOutcome]]:
        """Pages of every request of the batch in ``custom_id`` order, each page its own
        short read, so memory stays flat and nothing is held open while a client reads."""
        ...

    async def record_result_files(
        self, batch_seq: int, output_file_id: str | None, error_file_id: str | None, now: int
    ) -> None:
        """Record an OpenAI batch's result files, once: a later call changes nothing, so
        every reader sees the ids the first one recorded."""
        ...

    async def token_totals(self, batch_seq: int) -> tuple[int, int]:
        """``(input_tokens, output_tokens)`` summed over the batch's stored outcomes."""
        ...

    async def count_states(self, batch_seq: int) -> dict[str, int]:
        """Requests of the batch by state, recounted from the requests themselves."""
        ...


class QueueStore(Protocol):
    """The worker's side: lease requests, keep leases, record outcomes."""

    async def claim(
        self,
        *,
        limit: int,
        now: int,
        lease_until: int,
        models: Sequence[str] | None = None,
        other_models: bool = False,
    ) -> list[ClaimedRequest]:
        """Lease up to ``limit`` queued, due requests of open batches, oldest first.

        ``models`` restricts the claim to those model names; with ``other_models`` it takes
        requests for any model *not* listed (no engine here serves them). No request is ever
        leased to two claimers at once.
        """
        ...

    async def closing_batches(self, now: int) -> dict[int, UnstartedState]:
        """Open batches whose unstarted requests must not run: seq → how they end."""
        ...

    async def extend_leases(self, leases: Iterable[tuple[int, int]], until: int) -> None:
        """Push the lease of ``(row_id, attempt)`` pairs still held to ``until``."""
        ...

    async def finish(self, finished: Sequence[Finished], retries: Sequence[Retry], now: int) -> int:
        """Apply worker outcomes atomically; return how many of ``finished`` counted.

        One whose attempt no longer holds its request is discarded, never written twice.
        """
        ...


class OutboxStore(Protocol):
    """Webhook registrations and the outbox of events to deliver (at least once)."""

    async def add_webhook(self, workspace_name: str, url: str, secret: str, now: int) -> int: ...

    async def list_webhooks(self, workspace_name: str) -> list[WebhookRecord]: ...

    async def remove_webhook(self, workspace_name: str, webhook_id: int) -> bool:
        """Remove a webhook and its pending deliveries; ``False`` if the workspace has none."""
        ...

    async def claim_deliveries(
        self, *, limit: int, now: int, lease_until: int, max_attempts: int
    ) -> list[DueDelivery]:
        """Lease due events, counting the attempt; one process attempts an event at a time."""
        ...

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
        """Settle one attempt: delivered, retry at ``next_attempt_at``, or given up (``None``).
        Fenced: only the latest attempt may write; a delivered event stays delivered."""
        ...


class SweepStore(Protocol):
    """Periodic repairs, safe to run from any number of processes at once."""

    async def requeue_expired_leases(
        self, now: int, *, max_attempts: int, exhausted: Callable[[], bytes]
    ) -> int:
        """Return requests whose worker vanished to the queue; a request out of attempts is
        ``errored`` with the outcome ``exhausted()`` instead, so it cannot loop forever.
        Returns how many requests were found with an expired lease."""
        ...

    async def settle_closing_batches(self, now: int) -> int:
        """Settle queued requests of expired or canceling batches (requests that went back
        to the queue after the close); returns how many were settled."""
        ...

    async def purge_archived(self, now: int, *, limit: int) -> int:
        """One bounded step of retention: delete up to ``limit`` requests (and their
        outcomes) of one ended batch past ``archives_at``, in one short transaction, or mark
        such a batch purged once none are left; the batch row and its counts stay. Returns
        how many rows it deleted or marked: call again until it returns 0."""
        ...

    async def purge_expired_files(self, now: int, *, limit: int) -> int:
        """Delete up to ``limit`` files past their ``expires_at``, with their content, in one
        short transaction; returns how many. Call again while it returns ``limit``."""
        ...


class SubmissionStore(Protocol):
    """Requests relayed through upstream Message Batches (``anthropic-batch`` models).

    A ``submitted`` request is still ``processing`` for its batch's counts, but it is never
    claimed, leased or re-queued: its one result comes from its submission's upstream batch,
    written only while it is still ``submitted`` to that submission (fencing).
    """

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
        """Atomically take up to ``limit`` queued, due requests of open batches named by
        ``names`` (oldest first), let ``plan`` group them, and store one ``submitting``
        submission of ``model`` per group with its requests moved to ``submitted``, leased
        to the caller until ``lease_until``. Concurrent gatherers never take a request
        twice."""
        ...

    async def claim_submissions(
        self, *, model: str, now: int, lease_until: int, limit: int
    ) -> list[Submission]:
        """Lease up to ``limit`` open submissions of ``model`` that are due and not leased."""
        ...

    async def submitted_requests(
        self, submission_id: str, *, with_params: bool
    ) -> list[SubmittedRequest]:
        """The requests still ``submitted`` to this submission, by row id."""
        ...

    async def mark_submitted(
        self, submission_id: str, upstream_id: str, *, now: int, next_check_at: int
    ) -> str | None:
        """Record the upstream batch id of a ``submitting`` submission and release it.

        Returns the upstream id now recorded: ``upstream_id``, or the one an earlier send
        recorded (the caller then holds a duplicate upstream batch), or ``None`` if the
        submission is no longer open.
        """
        ...

    async def reschedule(
        self, submission_id: str, *, next_check_at: int, cancel_sent: bool, now: int
    ) -> None:
        """Release the submission until ``next_check_at``, counting one more check."""
        ...

    async def record_results(
        self, submission_id: str, results: Sequence[UpstreamResult], *, now: int, lease_until: int
    ) -> int:
        """Write results of requests still ``submitted`` to this submission (the others are
        discarded), moving counts and ending batches as :meth:`QueueStore.finish` does, and
        extend the submission's lease. Returns how many were written."""
        ...

    async def close_submission(
        self,
        submission_id: str,
        state: Literal["ended", "failed"],
        *,
        leftover: Callable[[], bytes],
        now: int,
    ) -> int:
        """Close an open submission; every request still ``submitted`` to it is ``errored``
        with the outcome ``leftover()``. Returns how many were."""
        ...


class FileStore(Protocol):
    """OpenAI Files: uploads stored in chunks, and the rows of files batches generate.

    Expiry is the caller's rule (it knows the clock): these methods return a file past its
    ``expires_at`` like any other until :meth:`SweepStore.purge_expired_files` removes it.
    """

    async def create_file(self, new: NewFile, content: AsyncIterator[bytes]) -> FileRecord:
        """Store the row and ``content`` (each piece one chunk, in order) atomically: if
        ``content`` raises, or anything fails midway, nothing of the file remains."""
        ...

    async def get_file(self, workspace_id: int, file_id: str) -> FileRecord | None: ...

    async def list_files(
        self,
        workspace_id: int,
        *,
        purpose: str | None,
        after: str | None,
        limit: int,
        order: Literal["asc", "desc"],
    ) -> FilePage | None:
        """Files of the workspace by ``created_at`` (then id), ``order``, after the file
        ``after``. ``None`` when ``after`` names no file of this workspace."""
        ...

    async def delete_file(self, workspace_id: int, file_id: str) -> FileRecord | None:
        """Remove the file and its content; return what was removed."""
        ...

    def iter_content(self, file_id: str) -> AsyncIterator[bytes]:
        """The stored chunks in order, a few per short read, so memory stays flat and no
        read stays open while a client downloads. Ends early if the file is deleted."""
        ...

    async def add_generated_file(self, new: NewFile, batch_seq: int, part: str) -> FileRecord:
        """The row of a batch's ``part`` file (``output`` or ``error``), without content;
        idempotent: if the batch already has that file, it is returned unchanged."""
        ...

    async def set_file_bytes(self, file_id: str, size: int) -> None:
        """Record the size of a generated file once computed."""
        ...


class RateLimitStore(Protocol):
    """Small shared states, one per key, changed atomically: the pacing of a rate-limited
    model for the whole deployment (:mod:`batchyard.worker.pacing`)."""

    async def update_rate_limit(self, key: str, change: Callable[[bytes | None], bytes]) -> None:
        """Replace the state stored under ``key`` (``None`` if none yet) by
        ``change(state)``, with no other change to that key in between, whichever process
        makes it. ``change`` is pure and may be called more than once (a lost race is
        retried); only its last result is stored."""
        ...


class Store(Protocol):
    """One storage backend, by concern."""

    @property
    def keys(self) -> KeyStore: ...

    @property
    def batches(self) -> BatchStore: ...

    @property
    def queue(self) -> QueueStore: ...

    @property
    def outbox(self) -> OutboxStore: ...

    @property
    def sweeps(self) -> SweepStore: ...

    @property
    def submissions(self) -> SubmissionStore: ...

    @property
    def rate_limits(self) -> RateLimitStore: ...

    @property
    def files(self) -> FileStore: ...

    async def close(self) -> None: ...


__all__ = [
    "BatchStore",
    "FileStore",
    "KeyStore",
    "OutboxStore",
    "QueueStore",
    "RateLimitStore",
    "Store",
    "SubmissionStore",
    "SweepStore",
]
