"""Privacy officers close alerts with a note; the access log pages by action and refusals.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

from sidecar.storage.database import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("privacy_alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("closed_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("closed_by", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("close_note", sa.Text(), nullable=True))
        batch_op.create_index("ix_privacy_alerts_open", ["closed_at", "raised_at"])
    denied = sa.text("outcome = 'denied'")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_entries_action"))
        batch_op.create_index("ix_audit_action", ["action", "seq"])
        batch_op.create_index(
            "ix_audit_denied", ["seq"], sqlite_where=denied, postgresql_where=denied
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_denied")
        batch_op.drop_index("ix_audit_action")
        batch_op.create_index(batch_op.f("ix_audit_entries_action"), ["action"], unique=False)
    with op.batch_alter_table("privacy_alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_privacy_alerts_open")
        batch_op.drop_column("close_note")
        batch_op.drop_column("closed_by")
        batch_op.drop_column("closed_at")
