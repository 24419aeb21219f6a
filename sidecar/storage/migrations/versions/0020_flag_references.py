"""Flag references a person can read out (FW-2026-0042), numbered per year; existing flags
get theirs in the order they were proposed.

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flag_reference_counters",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year"),
    )
    # A plain ADD COLUMN and a unique index: SQLite would otherwise rebuild the flags table,
    # which the rows of every table referring to a flag forbid.
    op.add_column("flags", sa.Column("reference", sa.String(length=16), nullable=True))
    op.create_index("uq_flags_reference", "flags", ["reference"], unique=True)
    _number_existing_flags()


def _number_existing_flags() -> None:
    bind = op.get_bind()
    flags = sa.table("flags", sa.column("id"), sa.column("proposed_at"), sa.column("reference"))
    counters = sa.table("flag_reference_counters", sa.column("year"), sa.column("last"))
    last: dict[int, int] = {}
    rows = bind.execute(sa.select(flags.c.id, flags.c.proposed_at).order_by("proposed_at", "id"))
    for flag_id, proposed_at in rows.all():
        year = _year(proposed_at)
        last[year] = last.get(year, 0) + 1
        bind.execute(
            flags.update()
            .where(flags.c.id == flag_id)
            .values(reference=f"FW-{year}-{last[year]:04d}")
        )
    if last:
        bind.execute(counters.insert(), [{"year": y, "last": n} for y, n in last.items()])


def _year(value: object) -> int:
    # SQLite hands back the stored text; PostgreSQL a datetime.
    return int(str(value)[:4])


def downgrade() -> None:
    op.drop_index("uq_flags_reference", "flags")
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.drop_column("reference")
    op.drop_table("flag_reference_counters")
