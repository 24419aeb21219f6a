"""CRM sync: the outbox written with each status change, drained into connectors in order."""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connectors import load_connector
from connectors.base import (
    Connector,
    ConnectorError,
    Delivery,
    FlagStatus,
    PushOutcome,
    ReconcileReport,
)
from sidecar.db import Database, utcnow
from sidecar.models import Flag, Subject, SubjectLink
from sidecar.settings import Settings, SyncSettings
from sidecar.status import crm_status
from sidecar.sync_models import OutboxEntry, SyncClaim, SyncCursor

log = logging.getLogger(__name__)

FINISHED = ("delivered", "superseded")


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
    crm = crm_status(session, settings, subject)
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
        version=int(crm["version"]),
        updated_at=utcnow(),
    )


def enqueue(session: Session, settings: Settings, subject: Subject) -> None:
    """Write the subject's new status for every configured connector, in the caller's
    transaction, so a committed change is never lost on its way to the CRM."""
    if not settings.connectors:
        return
    status = current_status(session, settings, subject)
    document = status.as_document()
    for name in settings.connectors:
        session.add(
            OutboxEntry(
                connector=name, subject_id=subject.id, version=status.version, status=document
            )
        )


def current_statuses(session: Session, settings: Settings) -> Iterator[tuple[str, FlagStatus]]:
    """Every subject that has or had a flag (directly or through a link), with its status."""
    flagged = select(Flag.subject_id).distinct()
    linked = select(SubjectLink.property_id).where(SubjectLink.customer_id.in_(flagged))
    subjects = session.execute(
        select(Subject).where(Subject.id.in_(flagged) | Subject.id.in_(linked)).order_by(Subject.id)
    ).scalars()
    for subject in subjects:
        yield subject.id, current_status(session, settings, subject)


def status_from_document(document: Mapping[str, Any]) -> FlagStatus:
    review = document.get("review_due")
    return FlagStatus(
        subject_kind=document["subject_kind"],
        subject_ref=document["subject_ref"],
        record_key=document["record_key"],
        level=document["level"],
        categories=tuple(document["categories"]),
        restrictions=tuple(document["restrictions"]),
        review_due=date.fromisoformat(review) if review else None,
        appeal_pending=bool(document["appeal_pending"]),
        version=int(document["version"]),
        updated_at=datetime.fromisoformat(document["updated_at"].replace("Z", "+00:00")),
    )


def retry_delay(policy: SyncSettings, attempts: int, retry_after: float | None) -> float:
    """Exponential backoff with full jitter, never sooner than the CRM's Retry-After."""
    ceiling = min(policy.backoff_cap_seconds, policy.backoff_base_seconds * 2 ** (attempts - 1))
    jittered = random.uniform(0, ceiling)  # noqa: S311  (spreading retries, not secrecy)
    return max(jittered, retry_after or 0.0)


@dataclass
class PassReport:
    """What one pass over one connector did."""

    connector: str
    claimed: int = 0
    delivered: int = 0
    not_found: int = 0
    retrying: int = 0
    dead: int = 0
    superseded: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return self.claimed > 0


class SyncWorker:
    """Drains the outbox: claims subjects, pushes their newest status, records the outcome.

    A subject is claimed by one worker at a time (a row in sync_claims whose primary key
    refuses a second claimant), so two versions of one subject never travel at once, and
    a version older than the one delivered is never sent. On PostgreSQL several workers
    may run side by side; on SQLite run one.
    """

    def __init__(
        self,
        database: Database,
        connectors: Mapping[str, Connector],
        policy: SyncSettings,
        worker_id: str | None = None,
    ) -> None:
        self.database = database
        self.connectors = dict(connectors)
        self.policy = policy
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"

    def run_once(self) -> list[PassReport]:
        return [self.drain(name) for name in self.connectors]

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                busy = any(report.busy for report in self.run_once())
            except Exception:
                log.exception("sync pass failed; retrying after the poll interval")
                busy = False
            if not busy:
                stop.wait(self.policy.poll_seconds)

    # One pass ------------------------------------------------------------------------------

    def drain(self, name: str) -> PassReport:
        report = PassReport(name)
        claimed = self._claim(name)
        report.claimed = len(claimed)
        if not claimed:
            return report
        try:
            to_push = self._newest_due(name, claimed, report)
            outcomes = self._push(name, [status for _, status in to_push])
            self._record(name, to_push, outcomes, report)
        finally:
            self._release(name, claimed)
        return report

    def _claim(self, name: str) -> list[str]:
        now = utcnow()
        claimed: list[str] = []
        with self.database.transaction() as session:
            session.execute(
                delete(SyncClaim).where(SyncClaim.connector == name, SyncClaim.until < now)
            )
            candidates = session.execute(
                select(OutboxEntry.subject_id)
                .where(
                    OutboxEntry.connector == name,
                    OutboxEntry.state == "pending",
                    OutboxEntry.next_attempt_at <= now,
                )
                .group_by(OutboxEntry.subject_id)
                .order_by(func.min(OutboxEntry.id))
                .limit(self.policy.batch_size)
            ).scalars()
            until = now + timedelta(seconds=self.policy.claim_seconds)
            for subject_id in list(candidates):
                try:
                    with session.begin_nested():
                        session.add(
                            SyncClaim(
                                connector=name,
                                subject_id=subject_id,
                                worker=self.worker_id,
                                until=until,
                            )
                        )
                except IntegrityError:
                    continue  # another worker holds this subject
                claimed.append(subject_id)
        return claimed

    def _newest_due(
        self, name: str, subjects: list[str], report: PassReport
    ) -> list[tuple[int, FlagStatus]]:
        """Per subject, the newest pending version; older pending versions are superseded."""
        now = utcnow()
        chosen: list[tuple[int, FlagStatus]] = []
        with self.database.transaction() as session:
            delivered = dict(
                session.execute(
                    select(SyncCursor.subject_id, SyncCursor.delivered_version).where(
                        SyncCursor.connector == name, SyncCursor.subject_id.in_(subjects)
                    )
                ).all()
            )
            rows = session.execute(
                select(OutboxEntry)
                .where(
                    OutboxEntry.connector == name,
                    OutboxEntry.subject_id.in_(subjects),
                    OutboxEntry.state == "pending",
                )
                .order_by(OutboxEntry.subject_id, OutboxEntry.version.desc(), OutboxEntry.id.desc())
            ).scalars()
            seen: set[str] = set()
            for row in rows:
                stale = row.subject_id in seen or row.version <= delivered.get(row.subject_id, -1)
                if stale:
                    row.state, row.finished_at = "superseded", now
                    report.superseded += 1
                    continue
                seen.add(row.subject_id)
                if row.next_attempt_at <= now:
                    chosen.append((row.id, status_from_document(row.status)))
        return chosen

    def _push(self, name: str, statuses: list[FlagStatus]) -> list[PushOutcome]:
        if not statuses:
            return []
        try:
            return self.connectors[name].push(statuses)
        except ConnectorError as exc:
            detail = f"{type(exc).__name__}: {exc}"
            retry_after = getattr(exc, "retry_after", None)
            return [PushOutcome(s, Delivery.RETRY, detail, retry_after) for s in statuses]

    def _record(
        self,
        name: str,
        pushed: list[tuple[int, FlagStatus]],
        outcomes: list[PushOutcome],
        report: PassReport,
    ) -> None:
        by_key = {
            (o.status.subject_kind, o.status.subject_ref, o.status.version): o for o in outcomes
        }
        now = utcnow()
        with self.database.transaction() as session:
            for row_id, status in pushed:
                row = session.get(OutboxEntry, row_id)
                assert row is not None
                outcome = by_key.get((status.subject_kind, status.subject_ref, status.version))
                if outcome is None:
                    outcome = PushOutcome(status, Delivery.RETRY, "the connector gave no outcome")
                self._apply(session, name, row, outcome, now, report)

    def _apply(
        self,
        session: Session,
        name: str,
        row: OutboxEntry,
        outcome: PushOutcome,
        now: datetime,
        report: PassReport,
    ) -> None:
        row.attempts += 1
        row.last_error = outcome.detail[:2000] or None
        if outcome.result is Delivery.DELIVERED:
            row.state, row.finished_at, row.last_error = "delivered", now, None
            _advance_cursor(session, name, row.subject_id, row.version, now)
            report.delivered += 1
        elif outcome.result is Delivery.NOT_FOUND:
            row.state, row.finished_at = "not_found", now
            report.not_found += 1
        elif outcome.result is Delivery.RETRY and row.attempts < self.policy.max_attempts:
            delay = retry_delay(self.policy, row.attempts, outcome.retry_after)
            row.next_attempt_at = now + timedelta(seconds=delay)
            report.retrying += 1
        else:
            row.state, row.finished_at = "dead", now
            report.dead += 1
            report.errors.append(
                f"{row.status['subject_kind']}:{row.status['subject_ref']}: {outcome.detail}"
            )

    def _release(self, name: str, subjects: list[str]) -> None:
        with self.database.transaction() as session:
            session.execute(
                delete(SyncClaim).where(
                    SyncClaim.connector == name,
                    SyncClaim.subject_id.in_(subjects),
                    SyncClaim.worker == self.worker_id,
                )
            )


def _advance_cursor(
    session: Session, name: str, subject_id: str, version: int, now: datetime
) -> None:
    cursor = session.get(SyncCursor, (name, subject_id))
    if cursor is None:
        session.add(
            SyncCursor(
                connector=name, subject_id=subject_id, delivered_version=version, delivered_at=now
            )
        )
    elif version > cursor.delivered_version:
        cursor.delivered_version, cursor.delivered_at = version, now


def requeue(database: Database, connector: str | None = None) -> int:
    """Put dead-lettered and not-found statuses back in the queue; return how many."""
    where = [OutboxEntry.state.in_(("dead", "not_found"))]
    if connector is not None:
        where.append(OutboxEntry.connector == connector)
    with database.transaction() as session:
        result = session.execute(
            update(OutboxEntry)
            .where(*where)
            .values(state="pending", attempts=0, next_attempt_at=utcnow(), finished_at=None)
        )
        return int(result.rowcount or 0)


@dataclass
class ConnectorStatus:
    """Health of one connector as operators see it."""

    name: str
    kind: str
    pending: int
    retrying: int
    dead: int
    not_found: int
    oldest_pending_seconds: float | None
    last_delivered_at: datetime | None
    health: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "pending": self.pending,
            "retrying": self.retrying,
            "dead_letters": self.dead,
            "not_found": self.not_found,
            "oldest_pending_seconds": self.oldest_pending_seconds,
            "last_delivered_at": self.last_delivered_at.isoformat()
            if self.last_delivered_at
            else None,
            "health": self.health,
        }


def sync_status(
    database: Database, settings: Settings, connectors: Mapping[str, Connector]
) -> list[ConnectorStatus]:
    now = utcnow()
    statuses = []
    with database.transaction() as session:
        for name, connector in connectors.items():
            counts = dict(
                session.execute(
                    select(OutboxEntry.state, func.count())
                    .where(OutboxEntry.connector == name)
                    .group_by(OutboxEntry.state)
                ).all()
            )
            retrying = session.execute(
                select(func.count()).where(
                    OutboxEntry.connector == name,
                    OutboxEntry.state == "pending",
                    OutboxEntry.attempts > 0,
                )
            ).scalar_one()
            oldest = session.execute(
                select(func.min(OutboxEntry.created_at)).where(
                    OutboxEntry.connector == name, OutboxEntry.state == "pending"
                )
            ).scalar_one()
            last = session.execute(
                select(func.max(SyncCursor.delivered_at)).where(SyncCursor.connector == name)
            ).scalar_one()
            if oldest is not None and oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=now.tzinfo)
            if last is not None and last.tzinfo is None:
                last = last.replace(tzinfo=now.tzinfo)
            health = connector.health()
            statuses.append(
                ConnectorStatus(
                    name=name,
                    kind=settings.connectors[name]["kind"],
                    pending=counts.get("pending", 0),
                    retrying=retrying,
                    dead=counts.get("dead", 0),
                    not_found=counts.get("not_found", 0),
                    oldest_pending_seconds=(now - oldest).total_seconds() if oldest else None,
                    last_delivered_at=last,
                    health={
                        "ok": health.ok,
                        "detail": health.detail,
                        "last_success": health.last_success.isoformat()
                        if health.last_success
                        else None,
                        "last_error": health.last_error,
                        **({"extra": health.extra} if health.extra else {}),
                    },
                )
            )
    return statuses


def reconcile(
    database: Database,
    connector_name: str,
    connector: Connector,
    statuses: Iterable[tuple[str, FlagStatus]],
) -> ReconcileReport:
    """Push every subject's current status in the CRM's batch form, then advance the cursors.

    `statuses` pairs each subject id with its current status, including "none" for
    subjects whose flags have ended, so the CRM clears them.
    """
    pairs = list(statuses)
    report = connector.reconcile(status for _, status in pairs)
    failed = {(o.status.subject_kind, o.status.subject_ref) for o in report.failures}
    now = utcnow()
    with database.transaction() as session:
        for subject_id, status in pairs:
            if (status.subject_kind, status.subject_ref) in failed:
                continue
            _advance_cursor(session, connector_name, subject_id, status.version, now)
            session.execute(
                update(OutboxEntry)
                .where(
                    OutboxEntry.connector == connector_name,
                    OutboxEntry.subject_id == subject_id,
                    OutboxEntry.state == "pending",
                    OutboxEntry.version <= status.version,
                )
                .values(state="superseded", finished_at=now)
            )
    return report
