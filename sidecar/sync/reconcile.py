"""Reconciliation: push every subject's current status to one CRM and record what it took."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import case, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from connectors.base import (
    Connector,
    Delivery,
    FlagStatus,
    PushOutcome,
    ReconcileReport,
)
from sidecar.audit import writer as audit
from sidecar.settings import Settings
from sidecar.storage.database import Database, utcnow
from sidecar.sync.models import ReconcileRun, StatusChange, SyncClaim, SyncCursor
from sidecar.sync.outbox import current_statuses, cursors_for
from sidecar.sync.record_ids import keep_record_ids

log = logging.getLogger(__name__)

# Cursors per executemany when a reconciliation records what the CRM took.
CURSOR_BATCH = 1000
# How often a reconciliation looks again for workers still busy with subjects it pushed.
CLAIM_POLL_SECONDS = 0.05


def reconcile(
    database: Database,
    connector_name: str,
    connector: Connector,
    statuses: Iterable[tuple[str, FlagStatus]],
) -> ReconcileReport:
    """Push every subject's current status in the CRM's batch form, then advance the cursors.

    `statuses` pairs each subject id with its current status, including "none" for
    subjects whose flags have ended, so the CRM clears them. A status the CRM did not take
    goes back to the outbox with its reason (`_requeue_failures`), so the worker sends it
    again and `sync status` counts it; a record the CRM does not have is recorded as not
    found. A status the CRM already held a newer version of changes nothing. A subject the
    worker delivered a newer version of meanwhile is queued again, once every worker that
    was pushing it has recorded what it did (see `_wait_for_workers` and
    `_record_deliveries`). The run itself is recorded, so `sync status` can tell a
    connector that was never reconciled.
    """
    pairs = list(statuses)
    # Record Ids the workers found save this run its lookups, and what it finds saves theirs.
    keep_record_ids(database, {connector_name: connector})
    report = connector.reconcile(status for _, status in pairs)
    failed = {(o.status.subject_kind, o.status.subject_ref): o for o in report.failures}
    passed = {(o.status.subject_kind, o.status.subject_ref) for o in report.superseded_outcomes}
    delivered: dict[str, int] = {}
    undelivered: dict[str, PushOutcome] = {}
    for subject_id, status in pairs:
        key = (status.subject_kind, status.subject_ref)
        if key in failed:
            undelivered[subject_id] = failed[key]
        elif key not in passed:
            delivered[subject_id] = max(status.version, delivered.get(subject_id, -1))
    _wait_for_workers(database, connector_name, delivered.keys())
    now = utcnow()
    with database.transaction() as session:
        _record_deliveries(session, connector_name, delivered, now)
        _requeue_failures(session, connector_name, undelivered, now)
        _record_run(session, connector_name, report, now)
    return report


def _requeue_failures(
    session: Session, name: str, undelivered: Mapping[str, PushOutcome], now: datetime
) -> None:
    """Put every status the reconciliation could not deliver back in the outbox, with why.

    A missing record is recorded as not found (a newer change or `sync requeue` tries it
    again). Any other failure makes the subject due for the worker now, with a change row
    for the version (its own may have been pruned) and the reconciliation's reason as the
    cursor's last error; a cursor already past that version needs nothing.
    """
    cursors = cursors_for(session, name, list(undelivered))
    for subject_id, outcome in undelivered.items():
        version = outcome.status.version
        cursor = cursors[subject_id]
        if cursor.delivered_version >= version:
            continue
        cursor.last_error = f"reconcile: {outcome.detail}"[:2000]
        cursor.attempted_version, cursor.updated_at = version, now
        if outcome.result is Delivery.NOT_FOUND:
            cursor.state = "not_found"
            continue
        cursor.state, cursor.next_attempt_at = "retrying", now
        session.add(StatusChange(subject_id=subject_id, version=version, created_at=now))


def _record_run(session: Session, name: str, report: ReconcileReport, now: datetime) -> None:
    run = session.get(ReconcileRun, name) or ReconcileRun(connector=name)
    run.finished_at, run.requests = now, report.requests
    run.delivered, run.not_found = report.delivered + report.superseded, report.not_found
    run.failed = report.failed + report.retry
    session.add(run)


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
    """Do to each delivered subject's cursor what `mark_delivered` does, a thousand at a time.

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


def run_reconcile(
    settings: Settings, database: Database, name: str, connector: Any, actor: dict[str, str]
) -> Any:
    """Reconcile one connector and record it in the audit trail (API and CLI share this)."""
    with database.transaction() as session:
        pairs = list(current_statuses(session, settings))
    report = reconcile(database, name, connector, pairs)
    with database.transaction() as session:
        audit.append(
            session,
            audit.AuditEvent(
                action="sync.reconcile",
                outcome_reason=(
                    f"{name}: {report.delivered} delivered, {report.not_found} not found, "
                    f"{report.failed + report.retry} failed, {report.requests} requests"
                ),
                **actor,
            ),
        )
    return report
