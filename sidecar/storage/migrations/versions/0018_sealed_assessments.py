"""Seal the panel's severity and frequency and the withdrawal reason; clear them from history.

Older versions kept a panel member's severity and frequency in plain text, in
`panel_decisions` and again in the panel events' facts in `flag_history`, and a withdrawal's
reason as the plain `why` of its history record (readable by every `flag.read` role). This
revision encrypts the panel's values in place, moves each withdrawal reason into the new
sealed `flags.withdrawal_reason`, and rewrites those history records without them (the
database refuses history changes otherwise, so its triggers are lifted for this revision
only). The audit entries written for those withdrawals keep their text: rewriting them would
break the hash chain; they leave with `forewarn audit prune`.

Revision ID: 0018
Revises: 0017
"""

import json

import sqlalchemy as sa
from alembic import context, op

from sidecar.storage.database import StorageError

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

WITHDRAWN_WHY = "withdrawn; the reason is kept with the flag's confidential details"
PANEL_EVENTS = ("panel_approve", "panel_reject")


def _keyring() -> object:
    keyring = context.config.attributes.get("keyring")
    if keyring is None:
        raise StorageError(
            "this database holds panel assessments or withdrawal reasons in plain text; "
            "run `forewarn init`, which supplies the data keys to seal them"
        )
    return keyring


def _needs_sealing(connection: sa.Connection) -> bool:
    panel = connection.execute(
        sa.text("SELECT 1 FROM panel_decisions WHERE severity IS NOT NULL LIMIT 1")
    ).first()
    history = connection.execute(
        sa.text(
            "SELECT 1 FROM flag_history WHERE action = 'withdrawn' OR action IN "
            "('panel_approve', 'panel_reject') LIMIT 1"
        )
    ).first()
    return panel is not None or history is not None


def _seal_panel(connection: sa.Connection, keyring: object) -> None:
    rows = connection.execute(sa.text("SELECT id, severity, frequency FROM panel_decisions"))
    for row_id, severity, frequency in rows.all():
        sealed = {
            column: None
            if value is None
            else keyring.encrypt(value, table="panel_decisions", row_id=row_id, column=column)
            for column, value in (("severity", severity), ("frequency", frequency))
        }
        connection.execute(
            sa.text("UPDATE panel_decisions SET severity = :s, frequency = :f WHERE id = :id"),
            {"s": sealed["severity"], "f": sealed["frequency"], "id": row_id},
        )


def _clear_history(connection: sa.Connection, keyring: object) -> None:
    events = connection.execute(
        sa.text(
            "SELECT id, flag_id, action, why, facts FROM flag_history "
            "WHERE action = 'withdrawn' OR action IN ('panel_approve', 'panel_reject')"
        )
    )
    for event_id, flag_id, action, why, facts in events.all():
        if action == "withdrawn":
            if why and why != WITHDRAWN_WHY:
                connection.execute(
                    sa.text("UPDATE flags SET withdrawal_reason = :r WHERE id = :id"),
                    {
                        "r": keyring.encrypt(
                            why, table="flags", row_id=flag_id, column="withdrawal_reason"
                        ),
                        "id": flag_id,
                    },
                )
            connection.execute(
                sa.text("UPDATE flag_history SET why = :w WHERE id = :id"),
                {"w": WITHDRAWN_WHY, "id": event_id},
            )
            continue
        parsed = json.loads(facts) if isinstance(facts, str) else dict(facts or {})
        kept = {k: v for k, v in parsed.items() if k not in ("severity", "frequency")}
        connection.execute(
            sa.text("UPDATE flag_history SET facts = :f WHERE id = :id").bindparams(
                sa.bindparam("f", type_=sa.JSON())
            ),
            {"f": kept, "id": event_id},
        )


def _lift_history_triggers(dialect: str) -> None:
    if dialect == "postgresql":
        op.execute("ALTER TABLE flag_history DISABLE TRIGGER flag_history_no_change")
    else:
        op.execute("DROP TRIGGER flag_history_no_update")


def _restore_history_triggers(dialect: str) -> None:
    if dialect == "postgresql":
        op.execute("ALTER TABLE flag_history ENABLE TRIGGER flag_history_no_change")
    else:
        op.execute(
            "CREATE TRIGGER flag_history_no_update BEFORE UPDATE ON flag_history "
            "BEGIN SELECT RAISE(ABORT, 'flag history is append-only'); END"
        )


def upgrade() -> None:
    connection = op.get_bind()
    # Asked before any change: SQLite does not roll its schema changes back.
    keyring = _keyring() if _needs_sealing(connection) else None
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.add_column(sa.Column("withdrawal_reason", sa.Text(), nullable=True))
    # Sealed columns are cleared by the retention purge, so they may be empty.
    with op.batch_alter_table("panel_decisions", schema=None) as batch_op:
        batch_op.alter_column("severity", existing_type=sa.Text(), nullable=True)
        batch_op.alter_column("frequency", existing_type=sa.Text(), nullable=True)
    if keyring is None:
        return
    _seal_panel(connection, keyring)
    dialect = connection.dialect.name
    _lift_history_triggers(dialect)
    _clear_history(connection, keyring)
    _restore_history_triggers(dialect)


def downgrade() -> None:
    # Sealed values stay sealed: a downgrade never writes confidential text in the clear.
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.drop_column("withdrawal_reason")
