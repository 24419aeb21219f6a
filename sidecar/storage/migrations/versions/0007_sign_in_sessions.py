"""Identity: sign-in sessions that can be ended server-side, and refused sign-ins to count.

Revision ID: 0007
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

import sidecar.storage.database

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column(
            "started_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "expires_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("ended_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=128), nullable=True),
        sa.Column("id_token", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    op.create_index("ix_staff_sessions_user_id", "staff_sessions", ["user_id"], unique=False)
    op.create_index("ix_staff_sessions_expires_at", "staff_sessions", ["expires_at"], unique=False)
    op.create_table(
        "sign_in_refusals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("account", sa.String(length=128), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sign_in_refusals_at", "sign_in_refusals", ["at"], unique=False)
    op.create_index(
        "ix_sign_in_refusals_account", "sign_in_refusals", ["account", "at"], unique=False
    )
    op.create_index(
        "ix_sign_in_refusals_address", "sign_in_refusals", ["address", "at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_sign_in_refusals_address", table_name="sign_in_refusals")
    op.drop_index("ix_sign_in_refusals_account", table_name="sign_in_refusals")
    op.drop_index("ix_sign_in_refusals_at", table_name="sign_in_refusals")
    op.drop_table("sign_in_refusals")
    op.drop_index("ix_staff_sessions_expires_at", table_name="staff_sessions")
    op.drop_index("ix_staff_sessions_user_id", table_name="staff_sessions")
    op.drop_table("staff_sessions")
