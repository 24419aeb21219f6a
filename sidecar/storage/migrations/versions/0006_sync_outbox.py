"""Sync outbox: status changes, per-connector cursors and claims.

Revision ID: 0006
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

import sidecar.storage.database

revision = "0006"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_claims",
        sa.Column("connector", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=32), nullable=False),
        sa.Column("worker", sa.String(length=128), nullable=False),
        sa.Column("until", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("connector", "subject_id"),
    )
    op.create_table(
        "sync_cursors",
        sa.Column("connector", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=32), nullable=False),
        sa.Column("delivered_version", sa.Integer(), nullable=False),
        sa.Column("attempted_version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "next_attempt_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "delivered_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "updated_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("connector", "subject_id"),
    )
    with op.batch_alter_table("sync_cursors", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sync_cursors_state", ["connector", "state", "next_attempt_at"], unique=False
        )

    op.create_table(
        "sync_status_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("subject_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["subjects.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sync_status_changes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sync_status_changes_subject", ["subject_id", "version"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sync_status_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_status_changes_subject")

    op.drop_table("sync_status_changes")
    with op.batch_alter_table("sync_cursors", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_cursors_state")

    op.drop_table("sync_cursors")
    op.drop_table("sync_claims")
