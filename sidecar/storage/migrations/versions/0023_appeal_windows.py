"""Open appeal windows read in closing order: the notices' date index also holds the flag,
so a page of windows is read from the index in order, ties included, with no sort; and the
Senior Manager handling the case, recorded with the decision letter.

Revision ID: 0023
Revises: 0022
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("flag_notices", schema=None) as batch_op:
        batch_op.drop_index("ix_flag_notices_issued_at")
        batch_op.create_index("ix_flag_notices_issued_at_flag", ["issued_at", "flag_id"])
        batch_op.add_column(sa.Column("handling_manager", sa.String(length=128), nullable=True))
        batch_op.add_column(
            sa.Column(
                "handling_manager_name", sa.String(length=256), nullable=False, server_default=""
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("flag_notices", schema=None) as batch_op:
        batch_op.drop_column("handling_manager_name")
        batch_op.drop_column("handling_manager")
        batch_op.drop_index("ix_flag_notices_issued_at_flag")
        batch_op.create_index("ix_flag_notices_issued_at", ["issued_at"])
