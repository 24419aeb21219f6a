"""The policy lifecycle: flag history (append-only), panel decisions, notices, letters,
appeals, reviews, linked incidents, the staff directory, and flags' own end date.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import sidecar.storage.database

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column(
            "last_seen_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "flag_appeals",
        sa.Column("flag_id", sa.String(length=32), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("lodged_by", sa.String(length=128), nullable=False),
        sa.Column("lodged_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("grounds", sa.Text(), nullable=True),
        sa.Column("handling_manager", sa.String(length=128), nullable=False),
        sa.Column("handling_manager_name", sa.String(length=256), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("reasons", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decided_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["flag_id"],
            ["flags.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("flag_appeals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flag_appeals_flag_id"), ["flag_id"], unique=False)

    op.create_table(
        "flag_history",
        sa.Column("flag_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.String(length=128), nullable=False),
        sa.Column("actor_name", sa.String(length=256), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("why", sa.Text(), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["flag_id"],
            ["flags.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("flag_id", "seq", name="uq_flag_history_flag_seq"),
    )
    with op.batch_alter_table("flag_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flag_history_flag_id"), ["flag_id"], unique=False)

    op.create_table(
        "flag_incidents",
        sa.Column("flag_id", sa.String(length=32), nullable=False),
        sa.Column("incident_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["flag_id"],
            ["flags.id"],
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
        ),
        sa.PrimaryKeyConstraint("flag_id", "incident_id"),
    )
    with op.batch_alter_table("flag_incidents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_flag_incidents_incident_id"), ["incident_id"], unique=False
        )

    op.create_table(
        "flag_letters",
        sa.Column("flag_id", sa.String(length=32), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column(
            "created_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("signed_by", sa.String(length=128), nullable=False),
        sa.Column("signed_by_name", sa.String(length=256), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["flag_id"],
            ["flags.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("flag_id", "n", name="uq_flag_letters_flag_n"),
    )
    with op.batch_alter_table("flag_letters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flag_letters_flag_id"), ["flag_id"], unique=False)

    op.create_table(
        "flag_notices",
        sa.Column("flag_id", sa.String(length=32), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("issued_by", sa.String(length=128), nullable=False),
        sa.Column("issued_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("legal_guidance_ref", sa.String(length=256), nullable=True),
        sa.Column("director_permission_by", sa.String(length=128), nullable=True),
        sa.Column("withheld_reason", sa.Text(), nullable=True),
        sa.Column("recipient_name", sa.Text(), nullable=True),
        sa.Column("recipient_address", sa.Text(), nullable=True),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["flag_id"],
            ["flags.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("flag_id"),
    )
    op.create_table(
        "flag_reviews",
        sa.Column("flag_id", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reviewed_by", sa.String(length=128), nullable=False),
        sa.Column(
            "reviewed_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("was_due", sa.Date(), nullable=True),
        sa.Column("next_review_due", sa.Date(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["flag_id"],
            ["flags.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("flag_reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flag_reviews_flag_id"), ["flag_id"], unique=False)

    op.create_table(
        "panel_decisions",
        sa.Column("flag_id", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=False),
        sa.Column("decided_by_name", sa.String(length=256), nullable=False),
        sa.Column(
            "decided_at", sidecar.storage.database.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("frequency", sa.Text(), nullable=False),
        sa.Column("proportionality", sa.Text(), nullable=True),
        sa.Column("reasonable_adjustments", sa.Text(), nullable=True),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["flag_id"],
            ["flags.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("flag_id", "decided_by", name="uq_panel_decisions_flag_person"),
        sa.UniqueConstraint("flag_id", "role", name="uq_panel_decisions_flag_role"),
    )
    with op.batch_alter_table("panel_decisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_panel_decisions_flag_id"), ["flag_id"], unique=False)

    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ends_on", sa.Date(), nullable=True))
        batch_op.create_index(batch_op.f("ix_flags_ends_on"), ["ends_on"], unique=False)

    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("triage_notes", sa.Text(), nullable=True))

    # History is evidence for the Ombudsman: the database itself refuses to change it.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION flag_history_immutable() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'flag history is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER flag_history_no_change BEFORE UPDATE OR DELETE ON flag_history "
            "FOR EACH ROW EXECUTE FUNCTION flag_history_immutable()"
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER flag_history_no_{event.lower()} BEFORE {event} ON flag_history "
                "BEGIN SELECT RAISE(ABORT, 'flag history is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER flag_history_no_change ON flag_history")
        op.execute("DROP FUNCTION flag_history_immutable()")
    else:
        op.execute("DROP TRIGGER flag_history_no_update")
        op.execute("DROP TRIGGER flag_history_no_delete")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("triage_notes")

    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flags_ends_on"))
        batch_op.drop_column("ends_on")

    with op.batch_alter_table("panel_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_panel_decisions_flag_id"))

    op.drop_table("panel_decisions")
    with op.batch_alter_table("flag_reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flag_reviews_flag_id"))

    op.drop_table("flag_reviews")
    op.drop_table("flag_notices")
    with op.batch_alter_table("flag_letters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flag_letters_flag_id"))

    op.drop_table("flag_letters")
    with op.batch_alter_table("flag_incidents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flag_incidents_incident_id"))

    op.drop_table("flag_incidents")
    with op.batch_alter_table("flag_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flag_history_flag_id"))

    op.drop_table("flag_history")
    with op.batch_alter_table("flag_appeals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flag_appeals_flag_id"))

    op.drop_table("flag_appeals")
    op.drop_table("staff")
