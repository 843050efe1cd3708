"""Table definitions shared by SQLite and PostgreSQL (SQLAlchemy Core, no ORM).

Row sizes matter at 100k requests a batch: a request row carries its params once, its
state and lease; its outcome lives in ``outcomes`` and is written exactly once.
Times are integer microseconds since the epoch (see :mod:`batchyard.timeutil`).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    text,
)

metadata = MetaData()

workspaces = Table(
    "workspaces",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id"), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("key_hint", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

#: ``status`` is the wire ``processing_status``; the counters always sum to ``total`` and are
#: changed only in the same transaction as the request states they count.
batches = Table(
    "batches",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("total", Integer, nullable=False),
    Column("processing", Integer, nullable=False),
    Column("succeeded", Integer, nullable=False, server_default=text("0")),
    Column("errored", Integer, nullable=False, server_default=text("0")),
    Column("canceled", Integer, nullable=False, server_default=text("0")),
    Column("expired", Integer, nullable=False, server_default=text("0")),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("archives_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger),
    Column("cancel_initiated_at", BigInteger),
    Column("purged", Integer, nullable=False, server_default=text("0")),
    #: Optional ``Idempotency-Key`` of the create call, with a digest of its body, so a
    #: replayed create returns the same batch instead of a second one.
    Column("idempotency_key", String(255)),
    Column("body_digest", String(64)),
    #: The create call's headers to pass on with each request (JSON ``[[name, value], …]``,
    #: ``NULL`` for none): a relay forwards ``anthropic-beta`` and the like upstream.
    Column("headers", LargeBinary),
    #: A batchyard extension: within its workspace, queued requests of a batch with a higher
    #: priority are claimed first (:mod:`batchyard.store.fairness`).
    Column("priority", Integer, nullable=False, server_default=text("0")),
    Index("ix_batches_workspace_seq", "workspace_id", "seq"),
    UniqueConstraint("workspace_id", "idempotency_key", name="uq_batches_idempotency_key"),
    Index(
        "ix_batches_open",
        "status",
        postgresql_where=text("status <> 'ended'"),
        sqlite_where=text("status <> 'ended'"),
    ),
)

#: What a batch made through the OpenAI surface (``POST /v1/batches``) has beyond the
#: Anthropic one: OpenAI's Batch fields. A batch with a row here is visible only through the
#: OpenAI routes and its requests' params are Chat Completions bodies; a batch without one only
#: through the Anthropic routes. A table of its own rather than columns of ``batches``: a
#: database made before it gains it without a migration. ``errors`` (JSON, OpenAI's
#: ``BatchError`` list) is set only for a batch whose input file was refused (``failed``).
openai_batches = Table(
    "openai_batches",
    metadata,
    Column("batch_seq", Integer, ForeignKey("batches.seq"), primary_key=True),
    Column("endpoint", String(64), nullable=False),
    Column("input_file_id", String(64), nullable=False),
    Column("completion_window", String(16), nullable=False),
    #: JSON object of up to 16 string pairs, ``NULL`` for none.
    Column("metadata", LargeBinary),
    #: The one model every request names, ``NULL`` if they name several.
    Column("model", String(256)),
    Column("errors", LargeBinary),
    #: ``output_expires_after.seconds``: how long the result files live once made.
    Column("output_expires_seconds", Integer),
    #: The result files, recorded once when first made (``files_made_at``); a file deleted
    #: later stays deleted, its id stays on the batch.
    Column("output_file_id", String(64)),
    Column("error_file_id", String(64)),
    Column("files_made_at", BigInteger),
)

#: Request ``state``: queued → running → succeeded | errored, or back to queued on a retry or
#: an expired lease; queued → submitted → any final state for a model relayed through an
#: upstream Message Batch (``submission_id`` names it; no lease, never claimed again);
#: queued → canceled | expired (its batch closed before it ran), and running → canceled |
#: expired too when a worker saw the close before starting it; running → errored when its
#: leases ran out on every attempt. ``attempt`` is bumped by every claim and is the fencing
#: token: a completion counts only if it names the attempt holding the row.
requests = Table(
    "requests",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("batch_seq", Integer, ForeignKey("batches.seq"), nullable=False),
    Column("custom_id", String(64), nullable=False),
    #: ``params.model`` as sent ("" if unreadable), so each worker claims per model.
    Column("model", String(256), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempt", Integer, nullable=False, server_default=text("0")),
    Column("lease_expires_at", BigInteger),
    Column("not_before", BigInteger),
    Column("params", LargeBinary, nullable=False),
    #: The upstream batch (:data:`submissions`) a ``submitted`` request went into.
    Column("submission_id", String(64)),
    #: Where the request stood in its create (0, 1, ...): the order a batch's queued requests
    #: are claimed in. Not ``id``: ordered by ``id``, PostgreSQL may walk the primary key and
    #: filter by batch (it estimates a batch's size from stale statistics), reading a whole
    #: older batch to reach a newer one's rows; no other index gives this order.
    Column("batch_position", Integer, nullable=False, server_default=text("0")),
    UniqueConstraint("batch_seq", "custom_id", name="uq_requests_batch_custom_id"),
    Index(
        "ix_requests_queued",
        "model",
        "id",
        postgresql_where=text("state = 'queued'"),
        sqlite_where=text("state = 'queued'"),
    ),
    #: A batch's queued requests per model in order: the fair claim reads a range of each
    #: ready batch's positions.
    Index(
        "ix_requests_batch_queued",
        "batch_seq",
        "model",
        "batch_position",
        postgresql_where=text("state = 'queued'"),
        sqlite_where=text("state = 'queued'"),
    ),
    Index(
        "ix_requests_submission",
        "submission_id",
        postgresql_where=text("submission_id IS NOT NULL"),
        sqlite_where=text("submission_id IS NOT NULL"),
    ),
    Index(
        "ix_requests_leases",
        "lease_expires_at",
        postgresql_where=text("state = 'running'"),
        sqlite_where=text("state = 'running'"),
    ),
)

#: The neutral outcome of each succeeded or errored request (:mod:`batchyard.protocol.outcomes`),
#: written exactly once (the primary key is the request's row); rendered to a wire format
#: only when results are read. Token counts sit beside it for reports without decoding it.
outcomes = Table(
    "outcomes",
    metadata,
    Column(
        "row_id",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("requests.id"),
        primary_key=True,
    ),
    Column("outcome", LargeBinary, nullable=False),
    Column("input_tokens", Integer, nullable=False, server_default=text("0")),
    Column("output_tokens", Integer, nullable=False, server_default=text("0")),
)

#: Where a workspace wants ``message_batch.ended`` events POSTed (a batchyard extension).
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id"), nullable=False),
    Column("url", String(2000), nullable=False),
    #: Standard Webhooks signing secret (``whsec_`` + base64); needed in clear to sign.
    Column("secret", String(200), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

#: The outbox: one row per (webhook, event), written in the transaction that ends the batch,
#: so an event is never lost even if the process dies right after. Delivered at least once.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("webhook_id", Integer, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    #: Not a foreign key: the event outlives a batch deleted before delivery.
    Column("batch_id", String(64), nullable=False),
    Column("event", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    #: ``NULL`` once delivered or given up.
    Column("next_attempt_at", BigInteger),
    Column("lease_expires_at", BigInteger),
    Column("delivered_at", BigInteger),
    Column("last_error", String(500)),
    Index(
        "ix_webhook_deliveries_due",
        "next_attempt_at",
        postgresql_where=text("next_attempt_at IS NOT NULL"),
        sqlite_where=text("next_attempt_at IS NOT NULL"),
    ),
)

#: Upstream Message Batches of ``anthropic-batch`` models. A row and its requests' move to
#: ``submitted`` commit together *before* the upstream's create is called, with ``id`` as its
#: ``Idempotency-Key``: a crash at any point leaves a row that says what to re-send (state
#: ``submitting``) or poll (``submitted``, ``upstream_id`` known). ``lease_expires_at`` is held
#: by the one process working on it for one step (a send, a poll, a results download);
#: ``next_check_at`` is when it is due again (backoff).
submissions = Table(
    "submissions",
    metadata,
    Column("id", String(64), primary_key=True),
    #: The configured model name whose engine options say where the upstream is.
    Column("model", String(256), nullable=False),
    Column("state", String(16), nullable=False),
    Column("upstream_id", String(128)),
    #: JSON ``[[name, value], …]`` forwarded with the create; ``NULL`` for none.
    Column("headers", LargeBinary),
    Column("request_count", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("submitted_at", BigInteger),
    Column("ended_at", BigInteger),
    Column("next_check_at", BigInteger, nullable=False),
    Column("checks", Integer, nullable=False, server_default=text("0")),
    Column("lease_expires_at", BigInteger),
    Column("cancel_sent_at", BigInteger),
    Index(
        "ix_submissions_open",
        "model",
        "next_check_at",
        postgresql_where=text("state IN ('submitting', 'submitted')"),
        sqlite_where=text("state IN ('submitting', 'submitted')"),
    ),
)


#: Shared pacing state of each rate-limited model (:mod:`batchyard.worker.buckets`, msgspec
#: JSON), read and rewritten under a row lock by every worker on each call it lets out.
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("key", String(256), primary_key=True),
    Column("state", LargeBinary, nullable=False),
)


#: OpenAI Files (``/v1/files``), scoped to a workspace like batches. An uploaded file's
#: content is its :data:`file_chunks`, written in the same transaction as the row, so a file
#: is listed only once all of it is stored. A file a batch generates (its output or error
#: file: ``batch_seq`` and ``batch_part`` set) has no chunks: its content is rendered from
#: the batch's outcomes when read, and ``bytes`` stays ``NULL`` until first computed.
#: ``expires_at`` (``NULL``: never) past, the file reads as deleted until a sweep removes it.
files = Table(
    "files",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id"), nullable=False),
    Column("filename", String(1000), nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("bytes", BigInteger),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger),
    Column("status", String(16), nullable=False),
    Column("batch_seq", Integer, ForeignKey("batches.seq")),
    #: ``output`` or ``error``: which of its batch's files this is.
    Column("batch_part", String(16)),
    UniqueConstraint("batch_seq", "batch_part", name="uq_files_batch_part"),
    Index("ix_files_workspace_created", "workspace_id", "created_at", "id"),
    Index(
        "ix_files_expiring",
        "expires_at",
        postgresql_where=text("expires_at IS NOT NULL"),
        sqlite_where=text("expires_at IS NOT NULL"),
    ),
)

#: An uploaded file's bytes in order, about 1 MiB a row, so neither a write nor a read ever
#: holds a whole file.
file_chunks = Table(
    "file_chunks",
    metadata,
    Column("file_id", String(64), ForeignKey("files.id"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("data", LargeBinary, nullable=False),
)
