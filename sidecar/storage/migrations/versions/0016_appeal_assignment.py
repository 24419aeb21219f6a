"""Appeals wait for a handling Senior Manager: the handler may be unassigned.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("flag_appeals", schema=None) as batch_op:
        batch_op.alter_column(
            "handling_manager", existing_type=sa.String(length=128), nullable=True
        )


def downgrade() -> None:
    with op.batch_alter_table("flag_appeals", schema=None) as batch_op:
        batch_op.alter_column(
            "handling_manager", existing_type=sa.String(length=128), nullable=False
        )
