"""The notifications outbox: claim what is due, send it, record each outcome; requeue, list.

The same retry policy as CRM syncs (`[sync]`: attempts, backoff with full jitter), and the
same outcome for a message that will not go: a dead letter, shown with its reason until it
is requeued. A digest's rows go out as one message and share its outcome.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.orm import Session

from sidecar.audit import writer as audit
from sidecar.notify.delivery import Delivery, DeliveryError, address_of
from sidecar.notify.events import ScanReport, scan_due
from sidecar.notify.messages import compose
from sidecar.notify.models import Notification
from sidecar.register.context import Clock
from sidecar.settings import Settings
from sidecar.storage.database import Database, utcnow
from sidecar.sync.outbox import retry_delay
from sidecar.sync.worker import PassReport

log = logging.getLogger(__name__)

WAITING = ("pending", "retrying")
STATES = ("pending", "retrying", "dead", "sent")
SHOWN = 100
"""Rows listed per state on the console page; the counts are always exact."""


def _due(now: datetime) -> Any:
    return (
        Notification.state.in_(WAITING),
        Notification.next_attempt_at <= now,
        or_(Notification.claimed_until.is_(None), Notification.claimed_until < now),
    )


class NotificationSender:
    """One pass at a time: claims due rows, sends each message, records what happened.

    Rows are claimed by a conditional UPDATE (a row another worker holds does not match), so
    several workers on PostgreSQL never send one message twice at once.
    """

    def __init__(
        self,
        database: Database,
        settings: Settings,
        delivery: Delivery,
        worker_id: str | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.database = database
        self.settings = settings
        self.delivery = delivery
        self.clock = clock
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.last_scan: datetime | None = None

    def run_once(self) -> PassReport:
        """Scan for time-based events when the scan is due, then send what is due."""
        now = self.clock()
        every = timedelta(minutes=self.settings.notifications.scan_minutes)
        if self.last_scan is None or now - self.last_scan >= every:
            scan(self.database, self.settings, now.date())
            self.last_scan = now
        return self.send_due()

    def send_due(self) -> PassReport:
        report = PassReport("notifications")
        rows = self._claim()
        report.claimed = len(rows)
        groups: dict[str, list[Notification]] = {}
        for row in rows:
            groups.setdefault(row.message_key or row.id, []).append(row)
        outcomes = [(group, self._send(group)) for group in groups.values()]
        self._record(outcomes, report)
        return report

    def _claim(self) -> list[Notification]:
        now = self.clock()
        until = now + timedelta(seconds=self.settings.sync.claim_seconds)
        with self.database.transaction() as session:
            ids = session.scalars(
                select(Notification.id)
                .where(*_due(now))
                .order_by(Notification.next_attempt_at, Notification.message_key, Notification.id)
                .limit(self.settings.notifications.batch_size)
            ).all()
            if not ids:
                return []
            session.execute(
                update(Notification)
                .where(Notification.id.in_(ids), *_due(now))
                .values(claimed_by=self.worker_id, claimed_until=until)
            )
            rows = session.scalars(
                select(Notification)
                .where(
                    Notification.id.in_(ids),
                    Notification.claimed_by == self.worker_id,
                    Notification.claimed_until == until,
                )
                .order_by(Notification.created_at, Notification.id)
            ).all()
            session.expunge_all()
        return list(rows)

    def _send(self, group: list[Notification]) -> tuple[str, str | None, bool]:
        """("sent", the service's id, _) or ("failed", why, transient)."""
        first = group[0]
        address = address_of(self.settings.notifications, first.recipient)
        if address is None:
            why = (
                f"no email address for {first.recipient}: add it to [notifications.addresses] "
                "and send it again"
            )
            return "failed", why, False
        try:
            message = compose(self.settings, group)
            return "sent", self.delivery.send(address, message), False
        except DeliveryError as exc:
            return "failed", str(exc), exc.transient
        except Exception as exc:  # a failure of ours must not lose the message either
            log.exception("notification %s could not be sent", first.id)
            return "failed", f"{type(exc).__name__}: {exc}", True

    def _record(
        self,
        outcomes: Sequence[tuple[list[Notification], tuple[str, str | None, bool]]],
        report: PassReport,
    ) -> None:
        now = self.clock()
        policy = self.settings.sync
        with self.database.transaction() as session:
            for group, (result, detail, transient) in outcomes:
                # One delay for the whole message, so a digest's rows stay one message.
                delay = retry_delay(policy, group[0].attempts + 1, None)
                for claimed in group:
                    row = session.get(Notification, claimed.id)
                    if row is None:
                        continue
                    row.claimed_by, row.claimed_until = None, None
                    row.attempts += 1
                    if result == "sent":
                        row.state, row.sent_at, row.provider_ref = "sent", now, detail
                        row.last_error = None
                    elif transient and row.attempts < policy.max_attempts:
                        row.state, row.last_error = "retrying", (detail or "")[:2000]
                        row.next_attempt_at = now + timedelta(seconds=delay)
                    else:
                        row.state, row.last_error = "dead", (detail or "")[:2000]
                    _count(report, row, detail)


def _count(report: PassReport, row: Notification, detail: str | None) -> None:
    if row.state == "sent":
        report.delivered += 1
    elif row.state == "retrying":
        report.retrying += 1
    else:
        report.dead += 1
        report.errors.append(f"{row.kind} to {row.recipient}: {detail}")


def scan(database: Database, settings: Settings, today: date) -> ScanReport:
    """`scan_due` in a transaction of its own."""
    with database.transaction() as session:
        return scan_due(session, settings, today)


def requeue_in(session: Session, actor: Mapping[str, str]) -> int:
    """Send every dead notification again on the next pass, recorded in the trail with who
    asked (`actor`: the audit entry's actor fields); return how many."""
    result = session.execute(
        update(Notification)
        .where(Notification.state == "dead")
        .values(state="retrying", attempts=0, next_attempt_at=utcnow())
    )
    count = int(getattr(result, "rowcount", 0) or 0)
    audit.append(
        session,
        audit.AuditEvent(
            action="notifications.requeue",
            outcome_reason=f"{count} notifications requeued",
            **actor,
        ),
    )
    return count


@dataclass
class OutboxView:
    """The outbox as operators see it: counts per state and the rows of each, newest first."""

    counts: dict[str, int]
    rows: dict[str, list[Notification]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "counts": self.counts,
            **{
                state: [
                    {
                        "id": row.id,
                        "kind": row.kind,
                        "recipient": row.recipient,
                        "created_at": row.created_at.isoformat(),
                        "next_attempt_at": row.next_attempt_at.isoformat(),
                        "attempts": row.attempts,
                        "last_error": row.last_error,
                        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
                    }
                    for row in rows
                ]
                for state, rows in self.rows.items()
            },
        }


def _listed(state: str) -> Select[tuple[Notification]]:
    newest = Notification.sent_at if state == "sent" else Notification.created_at
    return (
        select(Notification)
        .where(Notification.state == state)
        .order_by(newest.desc(), Notification.id)
        .limit(SHOWN)
    )


def outbox_view(session: Session) -> OutboxView:
    counts = dict(
        session.execute(select(Notification.state, func.count()).group_by(Notification.state)).all()
    )
    view = OutboxView(
        {state: counts.get(state, 0) for state in ("pending", "retrying", "sent", "dead")}
    )
    for state in view.counts:
        view.rows[state] = list(session.scalars(_listed(state)))
    return view
