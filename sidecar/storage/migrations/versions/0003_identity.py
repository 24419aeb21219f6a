"""Identity: launch-token ids already used (replay refusal across instances).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

import sidecar.storage.database

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "used_launch_tokens",
        sa.Column("jti_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "expires_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("jti_hash"),
    )
    op.create_index(
        "ix_used_launch_tokens_expires_at", "used_launch_tokens", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_used_launch_tokens_expires_at", table_name="used_launch_tokens")
    op.drop_table("used_launch_tokens")
