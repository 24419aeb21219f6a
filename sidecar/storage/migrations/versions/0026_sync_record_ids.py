"""CRM record Ids connectors have found, per connector and subject, so each is looked up once.

Revision ID: 0026
Revises: 0025
"""

import sqlalchemy as sa
from alembic import op

import sidecar.storage.database

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_record_ids",
        sa.Column("connector", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=32), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column(
            "learned_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("connector", "subject_id"),
    )


def downgrade() -> None:
    op.drop_table("sync_record_ids")
