"""The notifications outbox: events staff are told of, delivered by the worker with retries.

Revision ID: 0025
Revises: 0024
"""

import sqlalchemy as sa
from alembic import op

import sidecar.storage.database

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    when = sidecar.storage.database.UTCDateTime(timezone=True)
    op.create_table(
        "notifications",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("recipient", sa.String(length=128), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("link", sa.String(length=512), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("message_key", sa.String(length=256), nullable=True),
        sa.Column("dedupe_key", sa.String(length=256), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", when, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", when, nullable=True),
        sa.Column("provider_ref", sa.String(length=128), nullable=True),
        sa.Column("claimed_by", sa.String(length=128), nullable=True),
        sa.Column("claimed_until", when, nullable=True),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index("ix_notifications_due", ["state", "next_attempt_at"])
        batch_op.create_index("ix_notifications_created", ["created_at"])


def downgrade() -> None:
    op.drop_table("notifications")
