"""Whether the person was warned before a flag: when, or (sealed) why not.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.add_column(sa.Column("warning_given_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("no_warning_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.drop_column("no_warning_reason")
        batch_op.drop_column("warning_given_on")
