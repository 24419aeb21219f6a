"""The register reads a FHIR Flag needs beyond the banner's status: its dates, its subject."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection, bindparam, select

from sidecar.fhir.resources import FlagPeriod
from sidecar.register.models import Flag, Subject
from sidecar.register.rules import State

_FLAGS = Flag.__table__
_SUBJECTS = Subject.__table__
_PERIODS = select(_FLAGS.c.id, _FLAGS.c.activated_at, _FLAGS.c.ends_on).where(
    _FLAGS.c.id.in_(bindparam("ids", expanding=True))
)
# Only a flag the banner shows (active, its details not purged) has a subject to name.
_SHOWN_FLAG_SUBJECT = (
    select(_SUBJECTS.c.kind, _SUBJECTS.c.ref)
    .select_from(_FLAGS.join(_SUBJECTS, _SUBJECTS.c.id == _FLAGS.c.subject_id))
    .where(
        _FLAGS.c.id == bindparam("flag_id"),
        _FLAGS.c.state == State.ACTIVE.value,
        _FLAGS.c.purged_at.is_(None),
    )
)


def periods(connection: Connection, flag_ids: Collection[str]) -> dict[str, FlagPeriod]:
    """When each flag went live and when a time-limited one ends, by flag id."""
    if not flag_ids:
        return {}
    rows = connection.execute(_PERIODS, {"ids": list(flag_ids)})
    return {row.id: FlagPeriod(row.activated_at, row.ends_on) for row in rows}


def shown_subject(connection: Connection, flag_id: str) -> tuple[str, str] | None:
    """The kind and reference of an active flag's subject; None for any other flag id."""
    row = connection.execute(_SHOWN_FLAG_SUBJECT, {"flag_id": flag_id}).first()
    return (row.kind, row.ref) if row is not None else None
