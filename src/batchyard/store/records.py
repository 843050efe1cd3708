"""Plain records passed between the store, the services and the worker, and the rules that
every store implementation must agree on (so each rule is written once).

Naming: ``row_id`` is a request's integer row in the store, never shown to clients; ``id``
of a batch is its public ``msgbatch_…`` id and ``seq`` its row. The HTTP ``req_…`` ids are
called ``request_id`` and never mean a row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

BatchStatus = Literal["in_progress", "canceling", "ended"]
RequestState = Literal[
    "queued", "running", "submitted", "succeeded", "errored", "canceled", "expired"
]
FinalState = Literal["succeeded", "errored", "canceled", "expired"]
#: The final states a request reaches without an engine: its batch closed before it ran.
UnstartedState = Literal["canceled", "expired"]

#: Request headers to pass on with a batch's requests (the create call's ``anthropic-*``
#: headers a relay forwards), as ``(name, value)`` pairs.
Headers = tuple[tuple[str, str], ...]

FINAL_STATES: tuple[FinalState, ...] = ("succeeded", "errored", "canceled", "expired")
#: The webhook event queued for every webhook of a workspace when one of its batches ends.
BATCH_ENDED_EVENT = "message_batch.ended"


def closing_as(status: BatchStatus, expires_at: int, now: int) -> UnstartedState | None:
    """How an unstarted request of this batch must end now, or ``None`` if it may still run.

    The one place for the rule: past ``expires_at`` a batch's unstarted requests expire (even
    while it is being canceled: they expired before anyone canceled them); a batch being
    canceled cancels them; an open batch runs them.
    """
    if status == "ended":
        return None
    if expires_at <= now:
        return "expired"
    if status == "canceling":
        return "canceled"
    return None


@dataclass(frozen=True, slots=True)
class OpenAIBatch:
    """The OpenAI surface's fields of a batch it made (see ``tables.openai_batches``)."""

    endpoint: str
    input_file_id: str
    completion_window: str
    #: JSON of the ``metadata`` object, ``None`` for none.
    metadata: bytes | None = None
    model: str | None = None
    #: JSON of the ``BatchError`` list of a batch whose input file was refused.
    errors: bytes | None = None
    output_expires_seconds: int | None = None
    #: Set once the batch's result files were made (``None`` for a part it has none of).
    files_made: bool = False
    output_file_id: str | None = None
    error_file_id: str | None = None


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
    #: Set for a batch made through the OpenAI surface.
    openai: OpenAIBatch | None = None


@dataclass(frozen=True, slots=True)
class NewBatch:
    id: str
    workspace_id: int
    created_at: int
    expires_at: int
    archives_at: int
    idempotency_key: str | None = None
    body_digest: str | None = None
    #: Kept with the batch and handed to the worker with each of its requests.
    headers: Headers = ()
    #: For a batch of the OpenAI surface. One with no requests (its input file was refused)
    #: is created ended.
    openai: OpenAIBatch | None = None
    #: Higher first among its workspace's batches (:mod:`batchyard.store.fairness`).
    priority: int = 0
    #: Checked in the create's own transaction: :class:`~batchyard.errors.QueueFull` if one
    #: would be passed.
    queue_limits: tuple[QueueLimit, ...] = ()


@dataclass(frozen=True, slots=True)
class QueueLimit:
    """A model's ``max_queued_per_workspace``, for a create that adds ``adding`` of its
    requests: the workspace's queued requests under any of ``names`` count."""

    model: str
    names: tuple[str, ...]
    limit: int
    adding: int


class NewRequest(NamedTuple):
    """One request of a create, as stored: ``params`` verbatim, ``model`` for routing."""

    custom_id: str
    #: ``params.model``, or "" when the params do not name one readably.
    model: str
    params: bytes


@dataclass(frozen=True, slots=True)
class ClaimedRequest:
    """A request leased to one worker; ``attempt`` is its fencing token."""

    row_id: int
    batch_seq: int
    custom_id: str
    attempt: int
    params: bytes
    #: The headers of the create call that made the batch (:attr:`NewBatch.headers`).
    headers: Headers = ()
    #: ``params`` is a Chat Completions body (its batch came through the OpenAI surface),
    #: to be translated before it runs.
    chat: bool = False


@dataclass(frozen=True, slots=True)
class Finished:
    """A final state for one claimed request, with its outcome to store.

    ``outcome`` is the encoded neutral outcome (:mod:`batchyard.protocol.outcomes`) of a
    ``succeeded`` or ``errored`` request; requests ``canceled`` or ``expired`` before they
    reached an engine have none. The token counts are kept beside it for reporting.
    """

    row_id: int
    attempt: int
    state: FinalState
    outcome: bytes | None = None
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Retry:
    """Put a claimed request back in the queue, not to be claimed before ``not_before``.

    ``unstarted``: the request never reached an engine (handed back on shutdown), so the
    attempt it was claimed with is given back too and does not count against
    ``max_attempts``. Safe for fencing: nothing of that attempt can still be written.
    """

    row_id: int
    attempt: int
    not_before: int
    unstarted: bool = False


@dataclass(frozen=True, slots=True)
class BatchPage:
    batches: list[BatchRecord]
    has_more: bool


class StoredOutcome(NamedTuple):
    """One request of a batch as its results are read: ``custom_id`` order."""

    custom_id: str
    state: RequestState
    #: The encoded neutral outcome; ``None`` while unfinished and for canceled / expired.
    #: (The retention purge deletes a request and its outcome together.)
    outcome: bytes | None


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


# ---------------------------------------------------------------------------- upstream batches

#: An upstream submission's life: ``submitting`` (stored with its requests, the upstream's
#: create not yet known to have succeeded), ``submitted`` (the upstream batch id is known),
#: then ``ended`` (its results are written) or ``failed`` (the upstream refused the create).
SubmissionState = Literal["submitting", "submitted", "ended", "failed"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A queued request that could join an upstream batch, as a gathering plan sees it."""

    row_id: int
    #: ``len(params)``: what the request adds to the upstream create body, less framing.
    size: int
    headers: Headers
    #: When its batch was created: how long the request has been waiting to be gathered.
    queued_since: int


#: Decides which candidates (oldest first) go upstream now, as groups of row ids, one
#: upstream batch each; the rest stay queued (see :mod:`batchyard.worker.gathering`).
GatherPlan = Callable[[Sequence[Candidate]], list[list[int]]]


@dataclass(frozen=True, slots=True)
class Submission:
    """One upstream Message Batch of ours: its id is the create call's ``Idempotency-Key``."""

    id: str
    model: str
    state: SubmissionState
    upstream_id: str | None
    headers: Headers
    request_count: int
    created_at: int
    #: Checks (sends or polls) since the last change of state: the backoff exponent.
    checks: int
    #: Every request of it belongs to a local batch being canceled: cancel it upstream.
    cancel_wanted: bool
    cancel_sent: bool


@dataclass(frozen=True, slots=True)
class SubmittedRequest:
    row_id: int
    #: ``params.model`` as the client sent it: the name its answer must carry.
    model: str
    #: Empty unless asked for (only the create call needs them).
    params: bytes
    #: ``params`` is a Chat Completions body (an OpenAI batch's line), told only with them.
    chat: bool = False


@dataclass(frozen=True, slots=True)
class UpstreamResult:
    """The upstream's result for one submitted request, as stored (like :class:`Finished`,
    but fenced by the submission instead of an attempt)."""

    row_id: int
    state: FinalState
    outcome: bytes | None = None
    input_tokens: int = 0
    output_tokens: int = 0


# ---------------------------------------------------------------------------- files


@dataclass(frozen=True, slots=True)
class NewFile:
    """A file about to be stored: an upload, or a file a batch generates."""

    id: str
    workspace_id: int
    filename: str
    purpose: str
    created_at: int
    #: ``None``: kept until deleted.
    expires_at: int | None


@dataclass(frozen=True, slots=True)
class FileRecord:
    id: str
    workspace_id: int
    filename: str
    purpose: str
    #: ``None`` for a generated file whose size was not computed yet.
    bytes: int | None
    created_at: int
    expires_at: int | None
    status: str
    #: The batch (its ``seq``) that generates this file, and which of its files it is;
    #: ``None`` for an upload.
    batch_seq: int | None
    batch_part: str | None


@dataclass(frozen=True, slots=True)
class FilePage:
    files: list[FileRecord]
    has_more: bool
