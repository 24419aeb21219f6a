"""Initial schema: subjects, incidents, flags and the audit chain.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

import sidecar.storage.database

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.String(length=128), nullable=True),
        sa.Column("actor_name", sa.String(length=256), nullable=True),
        sa.Column("actor_roles", sa.String(length=512), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=True),
        sa.Column("subject_ref", sa.String(length=64), nullable=True),
        sa.Column("flag_id", sa.String(length=32), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("outcome_reason", sa.String(length=256), nullable=True),
        sa.Column("purpose_code", sa.String(length=64), nullable=True),
        sa.Column("purpose_text", sa.Text(), nullable=True),
        sa.Column("client_ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("via", sa.String(length=16), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index("ix_audit_actor", ["actor_id", "seq"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_entries_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_entries_at"), ["at"], unique=False)
        batch_op.create_index(
            "ix_audit_subject", ["subject_kind", "subject_ref", "seq"], unique=False
        )

    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "subjects",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("status_version", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "ref", name="uq_subjects_kind_ref"),
    )
    op.create_table(
        "flags",
        sa.Column("subject_id", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("restrictions", sa.JSON(), nullable=False),
        sa.Column("handling", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("control_measures", sa.Text(), nullable=True),
        sa.Column("reasonable_adjustments", sa.Text(), nullable=True),
        sa.Column("responsible_manager", sa.String(length=128), nullable=False),
        sa.Column("review_months", sa.Integer(), nullable=False),
        sa.Column("review_due", sa.Date(), nullable=True),
        sa.Column("provenance", sa.String(length=16), nullable=False),
        sa.Column("proposed_by", sa.String(length=128), nullable=False),
        sa.Column(
            "proposed_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "activated_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("ended_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("purged_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["subjects.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flags_review_due"), ["review_due"], unique=False)
        batch_op.create_index(batch_op.f("ix_flags_state"), ["state"], unique=False)
        batch_op.create_index("ix_flags_subject_state", ["subject_id", "state"], unique=False)

    op.create_table(
        "incidents",
        sa.Column("subject_id", sa.String(length=32), nullable=False),
        sa.Column("reported_by", sa.String(length=128), nullable=False),
        sa.Column(
            "occurred_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "recorded_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("behaviour_types", sa.JSON(), nullable=False),
        sa.Column("narrative", sa.Text(), nullable=True),
        sa.Column("warning_given", sa.Boolean(), nullable=False),
        sa.Column("triage", sa.String(length=32), nullable=True),
        sa.Column("triage_by", sa.String(length=128), nullable=True),
        sa.Column("triage_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("triage_considerations", sa.JSON(), nullable=True),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["subjects.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incidents_subject_id"), ["subject_id"], unique=False)

    op.create_table(
        "subject_links",
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("property_id", sa.String(length=32), nullable=False),
        sa.Column(
            "created_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["subjects.id"],
        ),
        sa.ForeignKeyConstraint(
            ["property_id"],
            ["subjects.id"],
        ),
        sa.PrimaryKeyConstraint("customer_id", "property_id"),
    )
    with op.batch_alter_table("subject_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_subject_links_property_id"), ["property_id"], unique=False
        )
    # The chain's head row exists from the start; writers lock it to take their turn.
    op.bulk_insert(
        sa.table(
            "audit_head",
            sa.column("id", sa.Integer),
            sa.column("seq", sa.Integer),
            sa.column("entry_hash", sa.String),
        ),
        [{"id": 1, "seq": 0, "entry_hash": "0" * 64}],
    )


def downgrade() -> None:
    with op.batch_alter_table("subject_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subject_links_property_id"))

    op.drop_table("subject_links")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incidents_subject_id"))

    op.drop_table("incidents")
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.drop_index("ix_flags_subject_state")
        batch_op.drop_index(batch_op.f("ix_flags_state"))
        batch_op.drop_index(batch_op.f("ix_flags_review_due"))

    op.drop_table("flags")
    op.drop_table("subjects")
    op.drop_table("audit_head")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_subject")
        batch_op.drop_index(batch_op.f("ix_audit_entries_at"))
        batch_op.drop_index(batch_op.f("ix_audit_entries_action"))
        batch_op.drop_index("ix_audit_actor")

    op.drop_table("audit_entries")
