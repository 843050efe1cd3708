"""The OpenAI surface: ``openai_batches`` (a batch's OpenAI Batch fields), ``files`` and
``file_chunks`` (OpenAI Files: uploads, and the rows of batches' result files).

Only new tables: nothing existing changes, so a database at the baseline keeps every row.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "openai_batches",
        sa.Column("batch_seq", sa.Integer, sa.ForeignKey("batches.seq"), primary_key=True),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("input_file_id", sa.String(64), nullable=False),
        sa.Column("completion_window", sa.String(16), nullable=False),
        sa.Column("metadata", sa.LargeBinary),
        sa.Column("model", sa.String(256)),
        sa.Column("errors", sa.LargeBinary),
        sa.Column("output_expires_seconds", sa.Integer),
        sa.Column("output_file_id", sa.String(64)),
        sa.Column("error_file_id", sa.String(64)),
        sa.Column("files_made_at", sa.BigInteger),
    )
    op.create_table(
        "files",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("workspace_id", sa.Integer, sa.ForeignKey("workspaces.id"), nullable=False),
        sa.Column("filename", sa.String(1000), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("bytes", sa.BigInteger),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("batch_seq", sa.Integer, sa.ForeignKey("batches.seq")),
        sa.Column("batch_part", sa.String(16)),
        sa.UniqueConstraint("batch_seq", "batch_part", name="uq_files_batch_part"),
    )
    op.create_index("ix_files_workspace_created", "files", ["workspace_id", "created_at", "id"])
    op.create_index(
        "ix_files_expiring",
        "files",
        ["expires_at"],
        postgresql_where=sa.text("expires_at IS NOT NULL"),
        sqlite_where=sa.text("expires_at IS NOT NULL"),
    )
    op.create_table(
        "file_chunks",
        sa.Column("file_id", sa.String(64), sa.ForeignKey("files.id"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("file_chunks")
    op.drop_index("ix_files_expiring", table_name="files")
    op.drop_index("ix_files_workspace_created", table_name="files")
    op.drop_table("files")
    op.drop_table("openai_batches")
