"""Sync outbox: statuses waiting for each connector, claims and delivery cursors.

Revision ID: 0006
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

import sidecar.db

revision = "0006"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_claims",
        sa.Column("connector", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=32), nullable=False),
        sa.Column("worker", sa.String(length=128), nullable=False),
        sa.Column("until", sidecar.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("connector", "subject_id"),
    )
    op.create_table(
        "sync_cursors",
        sa.Column("connector", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=32), nullable=False),
        sa.Column("delivered_version", sa.Integer(), nullable=False),
        sa.Column("delivered_at", sidecar.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("connector", "subject_id"),
    )
    op.create_table(
        "sync_outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("connector", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sidecar.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sidecar.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sidecar.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["subjects.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sync_outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sync_outbox_due", ["connector", "state", "next_attempt_at"], unique=False
        )
        batch_op.create_index(
            "ix_sync_outbox_subject", ["connector", "subject_id", "version"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sync_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_outbox_subject")
        batch_op.drop_index("ix_sync_outbox_due")

    op.drop_table("sync_outbox")
    op.drop_table("sync_cursors")
    op.drop_table("sync_claims")
