"""A Service Director's refusal of permission to withhold a decision letter, with its reason;
when each flag's notice was given, on the flag itself, so the console's home page counts the
flags awaiting one (and the open appeal windows) from an index.

Revision ID: 0024
Revises: 0023
"""

import sqlalchemy as sa
from alembic import op

import sidecar.storage.database

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs (nullable), so SQLite upgrades a register that has rows in place.
    op.add_column(
        "flag_withholding_guidance", sa.Column("refused_by", sa.String(length=128), nullable=True)
    )
    op.add_column(
        "flag_withholding_guidance",
        sa.Column("refused_by_name", sa.String(length=256), nullable=True),
    )
    op.add_column(
        "flag_withholding_guidance",
        sa.Column("refused_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "flag_withholding_guidance", sa.Column("refusal_reason", sa.Text(), nullable=True)
    )
    op.add_column(
        "flags",
        sa.Column("notice_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=True),
    )
    op.execute(
        "UPDATE flags SET notice_at = "
        "(SELECT issued_at FROM flag_notices WHERE flag_notices.flag_id = flags.id)"
    )
    op.create_index("ix_flags_state_notice", "flags", ["state", "notice_at", "activated_at"])
    op.create_index("ix_flags_state_review_due", "flags", ["state", "review_due"])


def downgrade() -> None:
    op.drop_index("ix_flags_state_review_due", table_name="flags")
    op.drop_index("ix_flags_state_notice", table_name="flags")
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.drop_column("notice_at")
    with op.batch_alter_table("flag_withholding_guidance", schema=None) as batch_op:
        batch_op.drop_column("refusal_reason")
        batch_op.drop_column("refused_at")
        batch_op.drop_column("refused_by_name")
        batch_op.drop_column("refused_by")
