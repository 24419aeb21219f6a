"""The sync outbox: each subject's current status, cursors, retries, requeue and health."""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from connectors import load_connector
from connectors.base import (
    Connector,
    FlagStatus,
)
from sidecar.register.models import Flag, Subject, SubjectLink
from sidecar.register.status import crm_status, crm_statuses
from sidecar.settings import Settings, SyncSettings
from sidecar.storage.database import Database, utcnow
from sidecar.sync.models import StatusChange, SyncCursor

log = logging.getLogger(__name__)

# Subjects per batch when a reconciliation computes every status: four queries per batch,
# each naming at most a few thousand ids (well inside SQLite's and psycopg's limits).
STATUS_BATCH = 1000


def load_connectors(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> dict[str, Connector]:
    """Build every configured connector; any that cannot load raises ConnectorConfigError."""
    env = os.environ if environ is None else environ
    built: dict[str, Connector] = {}
    for name, table in settings.connectors.items():
        options = {key: value for key, value in table.items() if key != "kind"}
        built[name] = load_connector(name, table["kind"], options, env)
    return built


def current_status(session: Session, settings: Settings, subject: Subject) -> FlagStatus:
    """The subject's status as connectors carry it (never a confidential field)."""
    return _flag_status(subject, crm_status(session, settings, subject))


def current_statuses(
    session: Session, settings: Settings, batch_size: int = STATUS_BATCH
) -> Iterator[tuple[str, FlagStatus]]:
    """Every subject that has or had a flag (directly or through a link), with its status.

    Statuses are computed `batch_size` subjects at a time, a few queries per batch.
    """
    flagged = select(Flag.subject_id).distinct()
    linked = select(SubjectLink.property_id).where(SubjectLink.customer_id.in_(flagged))
    ids = session.scalars(
        select(Subject.id)
        .where(Subject.id.in_(flagged) | Subject.id.in_(linked))
        .order_by(Subject.id)
    ).all()
    yield from statuses_of(session, settings, ids, batch_size)


def statuses_of(
    session: Session, settings: Settings, ids: Sequence[str], batch_size: int = STATUS_BATCH
) -> Iterator[tuple[str, FlagStatus]]:
    """The current status of each subject in `ids`, `batch_size` subjects to a few queries."""
    for start in range(0, len(ids), batch_size):
        subjects = session.scalars(
            select(Subject)
            .where(Subject.id.in_(ids[start : start + batch_size]))
            .order_by(Subject.id)
        ).all()
        statuses = crm_statuses(session, settings, subjects)
        for subject in subjects:
            yield subject.id, _flag_status(subject, statuses[subject.id])


def _flag_status(subject: Subject, crm: dict[str, Any]) -> FlagStatus:
    review = crm["review_due"]
    return FlagStatus(
        subject_kind=subject.kind,
        subject_ref=subject.ref,
        record_key=subject.ref,
        level=crm["level"],
        categories=tuple(crm["categories"]),
        restrictions=tuple(crm["restrictions"]),
        review_due=date.fromisoformat(review) if review else None,
        appeal_pending=bool(crm["appeal_pending"]),
        appeal_handler=crm["appeal_handler"],
        version=int(crm["version"]),
        updated_at=utcnow(),
        adjustments=tuple(crm["adjustments"]),
    )


def retry_delay(policy: SyncSettings, attempts: int, retry_after: float | None) -> float:
    """Exponential backoff with full jitter, never sooner than the CRM's Retry-After."""
    ceiling = min(policy.backoff_cap_seconds, policy.backoff_base_seconds * 2 ** (attempts - 1))
    jittered = random.uniform(0, ceiling)  # noqa: S311  (spreading retries, not secrecy)
    return max(jittered, retry_after or 0.0)


def due_subjects(name: str, now: datetime, limit: int) -> Select[tuple[str]]:
    """Subjects with a change newer than the connector has delivered, whose turn has come.

    A dead letter or a not-found record waits for `requeue` or for a newer change.
    """
    latest = func.max(StatusChange.version)
    delivered = func.coalesce(SyncCursor.delivered_version, -1)
    return (
        select(StatusChange.subject_id)
        .outerjoin(
            SyncCursor,
            and_(SyncCursor.connector == name, SyncCursor.subject_id == StatusChange.subject_id),
        )
        .group_by(
            StatusChange.subject_id,
            SyncCursor.delivered_version,
            SyncCursor.attempted_version,
            SyncCursor.state,
            SyncCursor.next_attempt_at,
        )
        .having(
            latest > delivered,
            or_(
                SyncCursor.state.is_(None),
                and_(SyncCursor.state.in_(("ok", "retrying")), SyncCursor.next_attempt_at <= now),
                and_(
                    SyncCursor.state.in_(("dead", "not_found")),
                    latest > SyncCursor.attempted_version,
                ),
            ),
        )
        .order_by(func.min(StatusChange.id))
        .limit(limit)
    )


def cursors_for(session: Session, name: str, subject_ids: Sequence[str]) -> dict[str, SyncCursor]:
    """The connector's cursor of each subject, created where missing, a thousand per query.

    One read per thousand subjects instead of one per subject (and no flush in between),
    so a pass or a reconciliation of many thousands records its outcomes quickly.
    """
    found: dict[str, SyncCursor] = {}
    for start in range(0, len(subject_ids), STATUS_BATCH):
        chunk = subject_ids[start : start + STATUS_BATCH]
        query = select(SyncCursor).where(
            SyncCursor.connector == name, SyncCursor.subject_id.in_(chunk)
        )
        found.update({c.subject_id: c for c in session.scalars(query)})
    missing = [_new_cursor(name, s) for s in dict.fromkeys(subject_ids) if s not in found]
    session.add_all(missing)
    found.update({c.subject_id: c for c in missing})
    return found


def _new_cursor(name: str, subject_id: str) -> SyncCursor:
    return SyncCursor(
        connector=name,
        subject_id=subject_id,
        delivered_version=-1,
        attempted_version=-1,
        state="ok",
        attempts=0,
        next_attempt_at=utcnow(),
    )


def mark_delivered(cursor: SyncCursor, version: int, now: datetime) -> None:
    cursor.state, cursor.last_error, cursor.attempts = "ok", None, 0
    if version > cursor.delivered_version:
        cursor.delivered_version, cursor.delivered_at = version, now


def prune_changes(database: Database, connector_names: list[str]) -> int:
    """Drop change rows every configured connector has delivered; keep the rest."""
    if not connector_names:
        return 0
    with database.transaction() as session:
        floor = (
            select(func.min(SyncCursor.delivered_version))
            .where(
                SyncCursor.subject_id == StatusChange.subject_id,
                SyncCursor.connector.in_(connector_names),
            )
            .having(func.count() == len(connector_names))
            .scalar_subquery()
        )
        result = session.execute(delete(StatusChange).where(StatusChange.version <= floor))
        return int(result.rowcount or 0)


def requeue(database: Database, connector: str | None = None) -> int:
    """Try dead-lettered and not-found statuses again on the next pass; return how many."""
    with database.transaction() as session:
        return requeue_in(session, connector)


def requeue_in(session: Session, connector: str | None = None) -> int:
    """`requeue` in the caller's transaction (with the audit entry of whoever asked)."""
    where = [SyncCursor.state.in_(("dead", "not_found"))]
    if connector is not None:
        where.append(SyncCursor.connector == connector)
    result = session.execute(
        update(SyncCursor)
        .where(*where)
        .values(state="retrying", attempts=0, next_attempt_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)
