"""Audit readiness: the row each instance's /readyz commits beside the chain.

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

from sidecar.storage.database import UTCDateTime

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_readiness",
        sa.Column("instance", sa.String(128), primary_key=True),
        sa.Column("probed_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_readiness")
