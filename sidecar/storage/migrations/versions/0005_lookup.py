"""Lookup: access grants for details and privacy alerts for auditors.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

import sidecar.storage.database

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_grants",
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_ref", sa.String(length=64), nullable=False),
        sa.Column("reason_code", sa.String(length=64), nullable=False),
        sa.Column("reason_text", sa.Text(), nullable=False),
        sa.Column("visit_date", sa.Date(), nullable=True),
        sa.Column(
            "created_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "expires_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("access_grants", schema=None) as batch_op:
        batch_op.create_index(
            "ix_access_grants_holder",
            ["user_id", "subject_kind", "subject_ref", "expires_at"],
            unique=False,
        )
        batch_op.create_index("ix_access_grants_made", ["user_id", "created_at"], unique=False)

    op.create_table(
        "privacy_alerts",
        sa.Column("raised_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=True),
        sa.Column("subject_ref", sa.String(length=64), nullable=True),
        sa.Column("flag_id", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.String(length=512), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("privacy_alerts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_privacy_alerts_raised_at"), ["raised_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_privacy_alerts_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("privacy_alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_privacy_alerts_user_id"))
        batch_op.drop_index(batch_op.f("ix_privacy_alerts_raised_at"))

    op.drop_table("privacy_alerts")
    with op.batch_alter_table("access_grants", schema=None) as batch_op:
        batch_op.drop_index("ix_access_grants_made")
        batch_op.drop_index("ix_access_grants_holder")

    op.drop_table("access_grants")
