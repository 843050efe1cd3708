"""Fair claims: ``batches.priority``, ``requests.batch_position`` and an index of each
batch's queued requests in that order.

New columns with defaults and a new index: every existing row keeps its data, existing
batches get priority 0 (what every batch had in effect before), and queued and running
requests get their place among those of their batch, by row id, as position (the order they
were claimed in before; only requests that may still be claimed are ever ordered by it).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "batches",
        sa.Column("priority", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    op.add_column(
        "requests",
        sa.Column("batch_position", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    # Positions within each batch in row order (0, 1, ...) for every request that may still
    # be claimed: queued ones, and running ones, which an expired lease queues again.
    op.execute(
        "UPDATE requests SET batch_position = ranked.position FROM ("
        "SELECT id, row_number() OVER (PARTITION BY batch_seq ORDER BY id) - 1 AS position "
        "FROM requests WHERE state IN ('queued', 'running')) AS ranked "
        "WHERE ranked.id = requests.id"
    )
    op.create_index(
        "ix_requests_batch_queued",
        "requests",
        ["batch_seq", "model", "batch_position"],
        postgresql_where=sa.text("state = 'queued'"),
        sqlite_where=sa.text("state = 'queued'"),
    )


def downgrade() -> None:
    op.drop_index("ix_requests_batch_queued", table_name="requests")
    op.drop_column("requests", "batch_position")
    op.drop_column("batches", "priority")
