"""The sync worker: claims due subjects, pushes their statuses and records each outcome."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite

from connectors.base import (
    Connector,
    ConnectorError,
    Delivery,
    FlagStatus,
    PushOutcome,
)
from sidecar.settings import Settings
from sidecar.storage.database import Database, utcnow
from sidecar.sync.models import SyncClaim, SyncCursor
from sidecar.sync.outbox import (
    cursors_for,
    due_subjects,
    mark_delivered,
    prune_changes,
    retry_delay,
    statuses_of,
)
from sidecar.sync.record_ids import keep_record_ids

log = logging.getLogger(__name__)

# Subjects per statement when a pass claims subjects.
CLAIM_BATCH = 1000


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


class Pass(Protocol):
    """Other work the worker's loop does on each pass (the notifications outbox)."""

    def run_once(self) -> PassReport: ...


class SyncWorker:
    """Drains the outbox: claims subjects, pushes their current status, records the outcome.

    The status sent is computed when it is sent, so it is always the newest, and a subject
    is claimed by one worker at a time (a row in sync_claims whose primary key refuses a
    second claimant), so two versions of one subject never travel at once. On PostgreSQL
    several workers may run side by side; on SQLite run one. Connectors keep the CRM record
    Ids they find in sync_record_ids, shared by every worker and reconciliation.
    """

    def __init__(
        self,
        database: Database,
        settings: Settings,
        connectors: Mapping[str, Connector],
        worker_id: str | None = None,
        also: Pass | None = None,
    ) -> None:
        self.database = database
        self.also = also
        self.settings = settings
        self.policy = settings.sync
        self.connectors = dict(connectors)
        keep_record_ids(database, self.connectors)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"

    def run_once(self) -> list[PassReport]:
        reports = [self.drain(name) for name in self.connectors]
        prune_changes(self.database, list(self.connectors))
        if self.also is not None:
            reports.append(self.also.run_once())
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
                pending = dict(statuses_of(session, self.settings, claimed))
            outcomes = self._push(name, list(pending.values()))
            self._record(name, pending, outcomes, report)
        finally:
            self._release(name, claimed)
        return report

    def _claim(self, name: str) -> list[str]:
        """Claim due subjects, as many as one push takes; skip those another worker holds.

        A pass claims the connector's `push_size`, at most `sync.batch_size`.

        One INSERT ... ON CONFLICT DO NOTHING per thousand subjects: the claims table's
        primary key refuses a second claimant, and RETURNING names the claims that were won.
        """
        now = utcnow()
        claimed: list[str] = []
        with self.database.transaction() as session:
            session.execute(
                delete(SyncClaim).where(SyncClaim.connector == name, SyncClaim.until < now)
            )
            candidates = list(
                session.execute(due_subjects(name, now, self._pass_size(name))).scalars()
            )
            until = now + timedelta(seconds=self.policy.claim_seconds)
            dialect = session.get_bind().dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            for start in range(0, len(candidates), CLAIM_BATCH):
                rows = [
                    {"connector": name, "subject_id": s, "worker": self.worker_id, "until": until}
                    for s in candidates[start : start + CLAIM_BATCH]
                ]
                won = session.scalars(
                    insert(SyncClaim)
                    .values(rows)
                    .on_conflict_do_nothing(
                        index_elements=[SyncClaim.connector, SyncClaim.subject_id]
                    )
                    .returning(SyncClaim.subject_id)
                )
                claimed += won.all()
        return claimed

    def _pass_size(self, name: str) -> int:
        return max(1, min(self.policy.batch_size, self.connectors[name].push_size))

    def _push(self, name: str, statuses: list[FlagStatus]) -> list[PushOutcome]:
        try:
            return self.connectors[name].push(statuses)
        except ConnectorError as exc:
            detail = f"{type(exc).__name__}: {exc}"
            result = Delivery.RETRY if exc.transient else Delivery.FAILED
            return [PushOutcome(s, result, detail, exc.retry_after) for s in statuses]

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
            cursors = cursors_for(session, name, list(pending))
            for subject_id, status in pending.items():
                outcome = by_key.get((status.subject_kind, status.subject_ref)) or PushOutcome(
                    status, Delivery.RETRY, "the connector gave no outcome"
                )
                self._apply(cursors[subject_id], outcome, now, report)

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
            mark_delivered(cursor, version, now)
            report.delivered += 1
        elif outcome.result is Delivery.NOT_FOUND:
            cursor.state = "not_found"
            report.not_found += 1
        elif (
            outcome.result in (Delivery.RETRY, Delivery.SUPERSEDED)
            and cursor.attempts < self.policy.max_attempts
        ):
            # SUPERSEDED: a newer version reached the CRM since this status was read (a
            # reconciliation's); the next attempt sends the newest, which the CRM takes.
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
