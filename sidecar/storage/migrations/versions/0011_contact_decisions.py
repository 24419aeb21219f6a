"""The decision log: dated decisions on a person's contact, and exceptions to the policy.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

from sidecar.storage.database import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contact_decisions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("subject_id", sa.String(32), sa.ForeignKey("subjects.id"), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("flag_id", sa.String(32), sa.ForeignKey("flags.id")),
        sa.Column("matter", sa.Text()),
        sa.Column("reason", sa.Text()),
        sa.Column("contact", sa.String(256), nullable=False),
        sa.Column("decided_by", sa.String(128), nullable=False),
        sa.Column("decided_on", sa.Date(), nullable=False),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.Column("recorded_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("lifted_on", sa.Date()),
        sa.Column("lifted_by", sa.String(128)),
        sa.Column("lift_reason", sa.Text()),
    )
    op.create_index("ix_contact_decisions_subject_id", "contact_decisions", ["subject_id"])


def downgrade() -> None:
    op.drop_index("ix_contact_decisions_subject_id", "contact_decisions")
    op.drop_table("contact_decisions")
