"""Console work queues: indexes behind the triage queue, the panel queue and a subject's incidents.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index("ix_incidents_triage_recorded", ["triage", "recorded_at"])
        batch_op.create_index("ix_incidents_subject_occurred", ["subject_id", "occurred_at"])
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.create_index("ix_flags_state_proposed", ["state", "proposed_at"])


def downgrade() -> None:
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.drop_index("ix_flags_state_proposed")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_incidents_subject_occurred")
        batch_op.drop_index("ix_incidents_triage_recorded")
