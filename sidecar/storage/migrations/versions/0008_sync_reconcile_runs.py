"""Sync: the last reconciliation of each connector, so a connector never reconciled says so.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

import sidecar.storage.database

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_reconcile_runs",
        sa.Column("connector", sa.String(length=64), nullable=False),
        sa.Column(
            "finished_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("delivered", sa.Integer(), nullable=False),
        sa.Column("not_found", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("connector"),
    )


def downgrade() -> None:
    op.drop_table("sync_reconcile_runs")
