"""Each decider's decision on an appeal, for councils whose appeals several must agree on;
everyone who took part in a review; councillors and contractors as those an incident happened
to and those a flag protects.

Revision ID: 0022
Revises: 0021
"""

import sqlalchemy as sa
from alembic import op

import sidecar.storage.database

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "appeal_decisions",
        sa.Column("flag_id", sa.String(length=32), nullable=False),
        sa.Column("appeal_id", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=False),
        sa.Column("decided_by_name", sa.String(length=256), nullable=False),
        sa.Column(
            "decided_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("reasons", sa.Text(), nullable=True),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["appeal_id"], ["flag_appeals.id"]),
        sa.ForeignKeyConstraint(["flag_id"], ["flags.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("appeal_id", "decided_by", name="uq_appeal_decisions_appeal_person"),
        sa.UniqueConstraint("appeal_id", "role", name="uq_appeal_decisions_appeal_role"),
    )
    op.create_index("ix_appeal_decisions_appeal_id", "appeal_decisions", ["appeal_id"])
    op.create_index("ix_appeal_decisions_flag_id", "appeal_decisions", ["flag_id"])
    op.add_column("flag_reviews", sa.Column("parties", sa.JSON(), nullable=True))
    op.add_column("incidents", sa.Column("reporter_kind", sa.String(length=16), nullable=True))
    op.add_column("incidents", sa.Column("reporter_name", sa.Text(), nullable=True))
    op.add_column("flags", sa.Column("protects", sa.JSON(), nullable=True))
    op.add_column("flags", sa.Column("protected_people", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("flags") as batch_op:
        batch_op.drop_column("protected_people")
        batch_op.drop_column("protects")
    with op.batch_alter_table("incidents") as batch_op:
        batch_op.drop_column("reporter_name")
        batch_op.drop_column("reporter_kind")
    with op.batch_alter_table("flag_reviews") as batch_op:
        batch_op.drop_column("parties")
    op.drop_index("ix_appeal_decisions_flag_id", table_name="appeal_decisions")
    op.drop_index("ix_appeal_decisions_appeal_id", table_name="appeal_decisions")
    op.drop_table("appeal_decisions")
