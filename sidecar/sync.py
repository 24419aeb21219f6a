"""CRM sync: the outbox written with each status change, drained into connectors in order."""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
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
from sidecar.status import crm_status, crm_statuses
from sidecar.sync_models import StatusChange, SyncClaim, SyncCursor

log = logging.getLogger(__name__)

# Subjects per batch when a reconciliation computes every status: four queries per batch,
# each naming at most a few thousand ids (well inside SQLite's and psycopg's limits).
STATUS_BATCH = 1000
# Cursors per executemany when a reconciliation records what the CRM took.
CURSOR_BATCH = 1000
# How often a reconciliation looks again for workers still busy with subjects it pushed.
CLAIM_POLL_SECONDS = 0.05


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
        version=int(crm["version"]),
        updated_at=utcnow(),
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
    errors: list[str] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return self.claimed > 0


def _due_subjects(name: str, now: datetime, limit: int) -> Select[tuple[str]]:
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


class SyncWorker:
    """Drains the outbox: claims subjects, pushes their current status, records the outcome.

    The status sent is computed when it is sent, so it is always the newest, and a subject
    is claimed by one worker at a time (a row in sync_claims whose primary key refuses a
    second claimant), so two versions of one subject never travel at once. On PostgreSQL
    several workers may run side by side; on SQLite run one.
    """

    def __init__(
        self,
        database: Database,
        settings: Settings,
        connectors: Mapping[str, Connector],
        worker_id: str | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.policy = settings.sync
        self.connectors = dict(connectors)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"

    def run_once(self) -> list[PassReport]:
        reports = [self.drain(name) for name in self.connectors]
        prune_changes(self.database, list(self.connectors))
        return reports

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                busy = any(report.busy for report in self.run_once())
            except Exception:
                log.exception("sync pass failed; retrying after the poll interval")
                busy = False
            if not busy:
                stop.wait(self.policy.poll_seconds)

    def drain(self, name: str) -> PassReport:
        report = PassReport(name)
        claimed = self._claim(name)
        report.claimed = len(claimed)
        if not claimed:
            return report
        try:
            with self.database.transaction() as session:
                subjects = session.execute(select(Subject).where(Subject.id.in_(claimed))).scalars()
                pending = {
                    subject.id: current_status(session, self.settings, subject)
                    for subject in subjects
                }
            outcomes = self._push(name, list(pending.values()))
            self._record(name, pending, outcomes, report)
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
            candidates = list(
                session.execute(_due_subjects(name, now, self.policy.batch_size)).scalars()
            )
            until = now + timedelta(seconds=self.policy.claim_seconds)
            for subject_id in candidates:
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

    def _push(self, name: str, statuses: list[FlagStatus]) -> list[PushOutcome]:
        try:
            return self.connectors[name].push(statuses)
        except ConnectorError as exc:
            detail = f"{type(exc).__name__}: {exc}"
            retry_after = getattr(exc, "retry_after", None)
            return [PushOutcome(s, Delivery.RETRY, detail, retry_after) for s in statuses]

    def _record(
        self,
        name: str,
        pending: dict[str, FlagStatus],
        outcomes: list[PushOutcome],
        report: PassReport,
    ) -> None:
        by_key = {(o.status.subject_kind, o.status.subject_ref): o for o in outcomes}
        now = utcnow()
        with self.database.transaction() as session:
            for subject_id, status in pending.items():
                outcome = by_key.get((status.subject_kind, status.subject_ref)) or PushOutcome(
                    status, Delivery.RETRY, "the connector gave no outcome"
                )
                cursor = _cursor(session, name, subject_id)
                self._apply(cursor, outcome, now, report)

    def _apply(
        self, cursor: SyncCursor, outcome: PushOutcome, now: datetime, report: PassReport
    ) -> None:
        version = outcome.status.version
        if cursor.attempted_version != version:
            cursor.attempts = 0
        cursor.attempted_version, cursor.updated_at = version, now
        cursor.attempts += 1
        cursor.last_error = outcome.detail[:2000] or None
        if outcome.result is Delivery.DELIVERED:
            _delivered(cursor, version, now)
            report.delivered += 1
        elif outcome.result is Delivery.NOT_FOUND:
            cursor.state = "not_found"
            report.not_found += 1
        elif outcome.result is Delivery.RETRY and cursor.attempts < self.policy.max_attempts:
            delay = retry_delay(self.policy, cursor.attempts, outcome.retry_after)
            cursor.state, cursor.next_attempt_at = "retrying", now + timedelta(seconds=delay)
            report.retrying += 1
        else:
            cursor.state = "dead"
            report.dead += 1
            report.errors.append(
                f"{outcome.status.subject_kind}:{outcome.status.subject_ref}: {outcome.detail}"
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


def _cursor(session: Session, name: str, subject_id: str) -> SyncCursor:
    cursor = session.get(SyncCursor, (name, subject_id))
    if cursor is None:
        cursor = SyncCursor(
            connector=name,
            subject_id=subject_id,
            delivered_version=-1,
            attempted_version=-1,
            state="ok",
            attempts=0,
            next_attempt_at=utcnow(),
        )
        session.add(cursor)
    return cursor


def _delivered(cursor: SyncCursor, version: int, now: datetime) -> None:
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
    where = [SyncCursor.state.in_(("dead", "not_found"))]
    if connector is not None:
        where.append(SyncCursor.connector == connector)
    with database.transaction() as session:
        result = session.execute(
            update(SyncCursor)
            .where(*where)
            .values(state="retrying", attempts=0, next_attempt_at=utcnow())
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
            "last_delivered_at": self.last_delivered_at.isoformat()
            if self.last_delivered_at
            else None,
            "health": self.health,
        }


def sync_status(
    database: Database, settings: Settings, connectors: Mapping[str, Connector]
) -> list[ConnectorStatus]:
    far_future = utcnow() + timedelta(days=36500)
    statuses = []
    with database.transaction() as session:
        for name, connector in connectors.items():
            states = dict(
                session.execute(
                    select(SyncCursor.state, func.count())
                    .where(SyncCursor.connector == name)
                    .group_by(SyncCursor.state)
                ).all()
            )
            # Counted in the database: the queue may hold many thousands of subjects.
            due = _due_subjects(name, far_future, 1_000_000_000).subquery()
            pending = session.execute(select(func.count()).select_from(due)).scalar_one()
            last = session.execute(
                select(func.max(SyncCursor.delivered_at)).where(SyncCursor.connector == name)
            ).scalar_one()
            health = connector.health()
            statuses.append(
                ConnectorStatus(
                    name=name,
                    kind=settings.connectors[name]["kind"],
                    pending=pending,
                    retrying=states.get("retrying", 0),
                    dead=states.get("dead", 0),
                    not_found=states.get("not_found", 0),
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
    subjects whose flags have ended, so the CRM clears them. A status the CRM did not take
    leaves its subject's cursor as it was (a dead letter stays one), so the outbox still
    owes the CRM that subject's newest version. A subject the worker delivered a newer
    version of meanwhile is queued again, once every worker that was pushing it has
    recorded what it did (see `_wait_for_workers` and `_record_deliveries`).
    """
    pairs = list(statuses)
    report = connector.reconcile(status for _, status in pairs)
    failed = {(o.status.subject_kind, o.status.subject_ref) for o in report.failures}
    delivered: dict[str, int] = {}
    for subject_id, status in pairs:
        if (status.subject_kind, status.subject_ref) not in failed:
            delivered[subject_id] = max(status.version, delivered.get(subject_id, -1))
    _wait_for_workers(database, connector_name, delivered.keys())
    with database.transaction() as session:
        _record_deliveries(session, connector_name, delivered, utcnow())
    return report


def _wait_for_workers(database: Database, name: str, subjects: Collection[str]) -> None:
    """Wait until every worker that was pushing one of `subjects` has recorded its outcome.

    A worker's update may reach the CRM before the reconciliation's older copy and be
    recorded only after the reconciliation has recorded its own deliveries; the newer
    version would then look delivered though the CRM holds the older one. A worker records
    before it releases its claim, so once the claims held when the push ended are released
    (or have expired: the worker is taken to be gone, as when another worker takes over),
    `_record_deliveries` sees every version that may have crossed the reconciliation's. A
    claim taken after the push ended is for a push that reaches the CRM later: no wait.
    """

    def held() -> set[tuple[str, str, datetime]]:
        with database.transaction() as session:
            claims = session.execute(
                select(SyncClaim.subject_id, SyncClaim.worker, SyncClaim.until).where(
                    SyncClaim.connector == name
                )
            )
            return {(s, worker, until) for s, worker, until in claims if s in subjects}

    waiting = held()
    if waiting:
        log.info("reconcile %s: waiting for workers pushing %d of its subjects", name, len(waiting))
    while waiting:
        now = utcnow()
        waiting = {claim for claim in waiting if claim[2] > now}
        if waiting:
            time.sleep(CLAIM_POLL_SECONDS)
            waiting &= held()


def _record_deliveries(
    session: Session, name: str, delivered: Mapping[str, int], now: datetime
) -> None:
    """Do to each delivered subject's cursor what `_delivered` does, a thousand at a time.

    One upsert per thousand cursors creates the missing cursors and updates the rest. A
    cursor may already hold a newer version than the reconciliation pushed: the worker
    delivered it after the statuses were computed. The CRM may then have applied the
    reconciliation's older copy last (its batch and the worker's update cross on the wire),
    and nothing would ever send the newer one again, so such a cursor goes back to the
    version the reconciliation pushed and the subject is queued for the worker once more.
    """
    dialect = session.get_bind().dialect.name
    upsert = postgresql.insert(SyncCursor) if dialect == "postgresql" else sqlite.insert(SyncCursor)
    newer = upsert.excluded.delivered_version > SyncCursor.delivered_version
    upsert = upsert.on_conflict_do_update(
        index_elements=[SyncCursor.connector, SyncCursor.subject_id],
        set_={
            "state": "ok",
            "last_error": None,
            "attempts": 0,
            "delivered_version": case(
                (newer, upsert.excluded.delivered_version), else_=SyncCursor.delivered_version
            ),
            "delivered_at": case(
                (newer, upsert.excluded.delivered_at), else_=SyncCursor.delivered_at
            ),
        },
    )
    ids = list(delivered)
    for start in range(0, len(ids), CURSOR_BATCH):
        chunk = ids[start : start + CURSOR_BATCH]
        overtaken = _newer_in_cursors(session, name, {i: delivered[i] for i in chunk})
        rows = [
            {
                "connector": name,
                "subject_id": subject_id,
                "delivered_version": delivered[subject_id],
                "attempted_version": -1,
                "state": "ok",
                "attempts": 0,
                "next_attempt_at": now,
                "last_error": None,
                "delivered_at": now,
                "updated_at": now,
            }
            for subject_id in chunk
        ]
        session.execute(upsert, rows)
        if overtaken:
            _send_again(session, name, delivered, overtaken, now)


def _newer_in_cursors(session: Session, name: str, pushed: Mapping[str, int]) -> dict[str, int]:
    """The subjects whose cursor holds a newer version than `pushed`, with that version."""
    held = session.execute(
        select(SyncCursor.subject_id, SyncCursor.delivered_version).where(
            SyncCursor.connector == name, SyncCursor.subject_id.in_(list(pushed))
        )
    )
    return {subject_id: version for subject_id, version in held if version > pushed[subject_id]}


def _send_again(
    session: Session,
    name: str,
    pushed: Mapping[str, int],
    newer: Mapping[str, int],
    now: datetime,
) -> None:
    """Make the worker send each subject in `newer` again, now.

    The cursor records the version the CRM may hold, and a change row the newer version
    (its own may have been pruned once every connector had delivered it), so the subject
    is due; the worker sends the current status, never an older one.
    """
    session.execute(
        update(SyncCursor),
        [
            {
                "connector": name,
                "subject_id": subject_id,
                "delivered_version": pushed[subject_id],
                "next_attempt_at": now,
            }
            for subject_id in newer
        ],
    )
    session.execute(
        insert(StatusChange),
        [
            {"subject_id": subject_id, "version": version, "created_at": now}
            for subject_id, version in newer.items()
        ],
    )
