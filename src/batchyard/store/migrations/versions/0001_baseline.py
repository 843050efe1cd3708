"""Baseline: the schema of the last release made without migrations (commit 7f0a037).

Frozen here as it was (table definitions copied, not imported: ``store/tables.py`` moves on),
and created as a whole. A database that batchyard made before migrations existed has exactly
these tables: ``batchyard db upgrade`` marks it as being at this revision, then upgrades it.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op
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

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None

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
    Index("ix_batches_workspace_seq", "workspace_id", "seq"),
    UniqueConstraint("workspace_id", "idempotency_key", name="uq_batches_idempotency_key"),
    Index(
        "ix_batches_open",
        "status",
        postgresql_where=text("status <> 'ended'"),
        sqlite_where=text("status <> 'ended'"),
    ),
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
    UniqueConstraint("batch_seq", "custom_id", name="uq_requests_batch_custom_id"),
    Index(
        "ix_requests_queued",
        "model",
        "id",
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


def upgrade() -> None:
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
