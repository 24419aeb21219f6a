"""Sync health per connector: queue depth, dead letters by name, the oldest undelivered change."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from connectors.base import Connector
from sidecar.register.models import Subject
from sidecar.settings import Settings
from sidecar.storage.database import Database, utcnow
from sidecar.sync.models import ReconcileRun, StatusChange, SyncCursor
from sidecar.sync.outbox import due_subjects

# Dead letters listed per connector; the count is always exact.
DEAD_LETTERS_SHOWN = 100


@dataclass
class DeadLetter:
    """A status the worker gave up on: whose, after how many attempts, why and when."""

    subject_kind: str
    subject_ref: str
    attempts: int
    last_error: str | None
    at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "subject": {"kind": self.subject_kind, "ref": self.subject_ref},
            "attempts": self.attempts,
            "last_error": self.last_error,
            "at": self.at.isoformat(),
        }


@dataclass
class ConnectorHealth:
    """Health of one connector as operators see it."""

    name: str
    kind: str
    pending: int
    retrying: int
    dead: int
    not_found: int
    last_delivered_at: datetime | None
    health: dict[str, Any]
    # Seconds since the oldest change this connector has not delivered was made (None: none).
    oldest_pending_seconds: float | None = None
    last_reconciled_at: datetime | None = None
    dead_letters: list[DeadLetter] = field(default_factory=list)

    @property
    def never_reconciled(self) -> bool:
        """A connector never reconciled may lack every status changed before it was added."""
        return self.last_reconciled_at is None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "pending": self.pending,
            "retrying": self.retrying,
            "dead_letters": self.dead,
            "not_found": self.not_found,
            "oldest_pending_seconds": self.oldest_pending_seconds,
            "last_delivered_at": _iso(self.last_delivered_at),
            "last_reconciled_at": _iso(self.last_reconciled_at),
            "never_reconciled": self.never_reconciled,
            "dead_letter_list": [letter.as_json() for letter in self.dead_letters],
            "health": self.health,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def connector_health(
    database: Database,
    settings: Settings,
    connectors: Mapping[str, Connector],
    *,
    probe: bool = True,
) -> list[ConnectorHealth]:
    """Each connector's queue as the database has it and, when `probe`, the CRM's answer."""
    statuses = []
    with database.transaction() as session:
        for name in connectors:
            statuses.append(_queue(session, name, settings.connectors[name]["kind"]))
    for item in statuses:
        item.health = _probe(connectors[item.name]) if probe else {}
    return statuses


def _queue(session: Session, name: str, kind: str) -> ConnectorHealth:
    now = utcnow()
    states = dict(
        session.execute(
            select(SyncCursor.state, func.count())
            .where(SyncCursor.connector == name)
            .group_by(SyncCursor.state)
        ).all()
    )
    # Counted in the database: the queue may hold many thousands of subjects.
    due = due_subjects(name, now + timedelta(days=36500), 1_000_000_000).subquery()
    pending = session.execute(select(func.count()).select_from(due)).scalar_one()
    last = session.execute(
        select(func.max(SyncCursor.delivered_at)).where(SyncCursor.connector == name)
    ).scalar_one()
    oldest = session.execute(
        select(func.min(StatusChange.created_at))
        .outerjoin(
            SyncCursor,
            and_(SyncCursor.connector == name, SyncCursor.subject_id == StatusChange.subject_id),
        )
        .where(StatusChange.version > func.coalesce(SyncCursor.delivered_version, -1))
    ).scalar_one()
    run = session.get(ReconcileRun, name)
    letters = session.execute(
        select(Subject.kind, Subject.ref, SyncCursor.attempts, SyncCursor.last_error)
        .add_columns(SyncCursor.updated_at)
        .join(Subject, Subject.id == SyncCursor.subject_id)
        .where(SyncCursor.connector == name, SyncCursor.state == "dead")
        .order_by(SyncCursor.updated_at.desc())
        .limit(DEAD_LETTERS_SHOWN)
    ).all()
    return ConnectorHealth(
        name=name,
        kind=kind,
        pending=pending,
        retrying=states.get("retrying", 0),
        dead=states.get("dead", 0),
        not_found=states.get("not_found", 0),
        last_delivered_at=last,
        health={},
        oldest_pending_seconds=(now - oldest).total_seconds() if oldest else None,
        last_reconciled_at=run.finished_at if run else None,
        dead_letters=[DeadLetter(*row) for row in letters],
    )


def _probe(connector: Connector) -> dict[str, Any]:
    health = connector.health()
    return {
        "ok": health.ok,
        "detail": health.detail,
        "last_success": _iso(health.last_success),
        "last_error": health.last_error,
        **({"extra": health.extra} if health.extra else {}),
    }
