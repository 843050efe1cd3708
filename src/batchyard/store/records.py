"""Plain records passed between the store, the service and the worker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

BatchStatus = Literal["in_progress", "canceling", "ended"]
FinalState = Literal["succeeded", "errored", "canceled", "expired"]


@dataclass(frozen=True, slots=True)
class BatchRecord:
    seq: int
    id: str
    workspace_id: int
    status: BatchStatus
    total: int
    processing: int
    succeeded: int
    errored: int
    canceled: int
    expired: int
    created_at: int
    expires_at: int
    archives_at: int
    ended_at: int | None
    cancel_initiated_at: int | None


@dataclass(frozen=True, slots=True)
class NewBatch:
    id: str
    workspace_id: int
    created_at: int
    expires_at: int
    archives_at: int
    idempotency_key: str | None = None
    body_digest: str | None = None


@dataclass(frozen=True, slots=True)
class ClaimedRequest:
    """A request leased to one worker; ``attempt`` is its fencing token."""

    id: int
    batch_seq: int
    custom_id: str
    attempt: int
    params: bytes


@dataclass(frozen=True, slots=True)
class Completion:
    """A final outcome for one claimed request, with its ready-made JSONL result line.

    ``canceled`` / ``expired`` are for requests claimed but not yet sent to an engine when
    their batch was canceled or expired.
    """

    request_id: int
    attempt: int
    state: FinalState
    line: bytes


@dataclass(frozen=True, slots=True)
class Retry:
    """Put a claimed request back in the queue, not to be claimed before ``not_before``.

    ``unstarted``: the request never reached an engine (handed back on shutdown), so the
    attempt it was claimed with is given back too and does not count against
    ``max_attempts``. Safe for fencing: nothing of that attempt can still be written.
    """

    request_id: int
    attempt: int
    not_before: int
    unstarted: bool = False


@dataclass(frozen=True, slots=True)
class BatchPage:
    batches: list[BatchRecord]
    has_more: bool


class StoredResult(NamedTuple):
    custom_id: str
    state: str
    #: The stored JSONL line; ``None`` for requests canceled or expired while queued.
    line: bytes | None


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    id: int
    url: str
    created_at: int


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A webhook event leased to one process for one delivery attempt."""

    id: int
    url: str
    secret: str
    workspace_id: int
    batch_id: str
    event: str
    #: Including the attempt now being made.
    attempts: int
    created_at: int


class IdempotencyKeyTaken(Exception):
    """Another create with the same ``Idempotency-Key`` committed first."""
