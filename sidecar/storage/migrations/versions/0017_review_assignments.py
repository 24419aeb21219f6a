"""Review assignments: only the reviewers the Customer Support Manager names may review a flag.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

import sidecar.storage.database

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_assignments",
        sa.Column("flag_id", sa.String(length=32), nullable=False),
        sa.Column("reviewer", sa.String(length=128), nullable=False),
        sa.Column("assigned_by", sa.String(length=128), nullable=False),
        sa.Column(
            "assigned_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("ended_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["flag_id"], ["flags.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("review_assignments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_review_assignments_flag_id"), ["flag_id"], unique=False
        )
    # Reviews recorded before this revision keep no assignment: they open nothing.
    with op.batch_alter_table("flag_reviews", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assignment_id", sa.String(length=32), nullable=True))
        batch_op.create_foreign_key(
            "fk_flag_reviews_assignment_id", "review_assignments", ["assignment_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("flag_reviews", schema=None) as batch_op:
        batch_op.drop_constraint("fk_flag_reviews_assignment_id", type_="foreignkey")
        batch_op.drop_column("assignment_id")
    with op.batch_alter_table("review_assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_assignments_flag_id"))
    op.drop_table("review_assignments")
