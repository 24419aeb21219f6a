"""The Head of Legal's guidance to withhold a decision letter, awaiting a Service Director;
indexes behind the console's open appeals and open appeal windows.

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

import sidecar.storage.database

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flag_withholding_guidance",
        sa.Column("flag_id", sa.String(length=32), nullable=False),
        sa.Column("legal_guidance_ref", sa.String(length=256), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("recorded_by", sa.String(length=128), nullable=False),
        sa.Column("recorded_by_name", sa.String(length=256), nullable=False),
        sa.Column(
            "recorded_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["flag_id"], ["flags.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("flag_id"),
    )
    with op.batch_alter_table("flag_appeals", schema=None) as batch_op:
        batch_op.create_index("ix_flag_appeals_outcome_received", ["outcome", "received_on"])
    with op.batch_alter_table("flag_notices", schema=None) as batch_op:
        batch_op.create_index("ix_flag_notices_issued_at", ["issued_at"])


def downgrade() -> None:
    with op.batch_alter_table("flag_notices", schema=None) as batch_op:
        batch_op.drop_index("ix_flag_notices_issued_at")
    with op.batch_alter_table("flag_appeals", schema=None) as batch_op:
        batch_op.drop_index("ix_flag_appeals_outcome_received")
    op.drop_table("flag_withholding_guidance")
