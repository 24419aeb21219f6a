"""The console's work queues: what waits for the signed-in person, counted and paged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Protocol

from flask import request
from sqlalchemy import Select, exists, false, func, or_, select
from sqlalchemy.orm import Session, joinedload

from sidecar.lookup.alerts import open_alerts
from sidecar.policy import access
from sidecar.register.appeals import open_windows, window_start
from sidecar.register.case_models import Appeal, Notice, PanelDecision, WithholdingGuidance
from sidecar.register.models import Flag, Incident, Subject
from sidecar.register.rules import State
from sidecar.runtime import current_runtime
from sidecar.storage.database import utcnow
from sidecar.sync.models import SyncCursor

PAGE_SIZE = 25


class Person(Protocol):
    id: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class Queue:
    """One work queue on the home page: what it holds, how many, and where to work it."""

    title: str
    count: int
    endpoint: str
    description: str


@dataclass
class Page:
    """One page of a queue: its rows, and where it sits among the others."""

    rows: list[Any]
    total: int
    number: int
    size: int = PAGE_SIZE

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


def requested_page() -> int:
    """The page number a list was asked for (?page=), 1 for anything else."""
    value = request.args.get("page", "1")
    return int(value) if value.isdigit() and 0 < int(value) < 10_000 else 1


def flag_title(flag: Flag) -> str:
    """How a queue names a flag: its reference, level and subject."""
    return (
        f"{flag.reference or flag.id}: {flag.level} flag for {flag.subject.kind} {flag.subject.ref}"
    )


def page_of(session: Session, query: Select[Any], number: int) -> Page:
    """Rows `number` (from 1) of a query ordered on an indexed key, and the total count."""
    total = _count(session, query)
    number = max(1, number)
    rows = list(
        session.execute(query.limit(PAGE_SIZE).offset((number - 1) * PAGE_SIZE)).unique().scalars()
    )
    return Page(rows, total, number)


def untriaged() -> Select[Any]:
    """Incidents no manager has triaged yet, the longest waiting first."""
    return (
        select(Incident)
        .where(Incident.triage.is_(None))
        .order_by(Incident.recorded_at, Incident.id)
    )


def awaiting_vote(user: Person) -> Select[Any]:
    """Proposals the person can still vote on: a panel role of theirs has not decided, and
    they have not decided in another role (each seat a different person)."""
    panel = current_runtime().settings.panel
    roles = [role for role in panel.roles if role in user.roles]
    voted = exists().where(PanelDecision.flag_id == Flag.id, PanelDecision.decided_by == user.id)
    open_roles = [
        ~exists().where(PanelDecision.flag_id == Flag.id, PanelDecision.role == role)
        for role in roles
    ]
    return (
        select(Flag)
        .options(joinedload(Flag.subject))
        .where(Flag.state == State.PROPOSED.value, ~voted, or_(false(), *open_roles))
        .order_by(Flag.proposed_at, Flag.id)
    )


def awaiting_notice() -> Select[Any]:
    """Active flags the person has not been told of yet, the longest waiting first."""
    return (
        select(Flag)
        .options(joinedload(Flag.subject))
        .where(Flag.state == State.ACTIVE.value, ~exists().where(Notice.flag_id == Flag.id))
        .order_by(Flag.activated_at, Flag.id)
    )


def awaiting_permission() -> Select[Any]:
    """Active flags whose letter the Head of Legal advises withholding, awaiting a director."""
    return awaiting_notice().where(exists().where(WithholdingGuidance.flag_id == Flag.id))


def open_appeals() -> Select[Any]:
    """Flags with an appeal awaiting a decision, the appeal received first, first."""
    return (
        select(Flag)
        .options(joinedload(Flag.subject))
        .join(Appeal, Appeal.flag_id == Flag.id)
        .where(Appeal.outcome.is_(None))
        .order_by(Appeal.received_on, Appeal.id)
    )


def reviews_due(horizon: date) -> Select[Any]:
    """Active flags whose review falls due by `horizon`, the most overdue first."""
    return (
        select(Flag)
        .options(joinedload(Flag.subject))
        .where(Flag.state == State.ACTIVE.value, Flag.review_due <= horizon)
        .order_by(Flag.review_due, Flag.id)
    )


def review_horizon(today: date) -> date:
    """The last review date that counts as due today (config: lifecycle.review_due_soon_days)."""
    return today + timedelta(days=current_runtime().settings.lifecycle.review_due_soon_days)


def past_end_date(today: date) -> Select[Any]:
    """Active flags whose own end date has passed: expiry will end them."""
    return (
        select(Flag)
        .options(joinedload(Flag.subject))
        .where(Flag.state == State.ACTIVE.value, Flag.ends_on < today)
        .order_by(Flag.ends_on, Flag.id)
    )


def for_user(session: Session, user: Person) -> list[Queue]:
    """The queues the person's roles give them, each with its count."""
    found = []
    if access.decide(user, "incident.triage").allowed:
        found.append(
            Queue(
                "Incidents to triage",
                _count(session, untriaged()),
                "console.incidents.triage_queue",
                "Incidents no manager has decided on yet, the longest waiting first.",
            )
        )
    if access.decide(user, "panel.decide").allowed:
        found.append(
            Queue(
                "Proposals awaiting your vote",
                _count(session, awaiting_vote(user)),
                "console.panel.queue",
                "Flags proposed for case review that need your decision.",
            )
        )
    if any(access.decide(user, a).allowed for a in ("notice.issue", "notice.record_guidance")):
        found.append(
            Queue(
                "Flags awaiting a notice",
                _count(session, awaiting_notice()),
                "console.notices.awaiting_notice_queue",
                "Active flags the person has not yet been told of by letter or exception.",
            )
        )
    if access.decide(user, "notice.permit_withheld").allowed:
        found.append(
            Queue(
                "Withheld letters awaiting your permission",
                _count(session, awaiting_permission()),
                "console.notices.awaiting_permission_queue",
                "Legal guidance advises withholding these decision letters.",
            )
        )
    if access.decide(user, "review.record").allowed:
        found.append(
            Queue(
                "Reviews due or overdue",
                _count(session, reviews_due(review_horizon(utcnow().date()))),
                "console.reviews.due_queue",
                "Active flags to review, the most overdue first.",
            )
        )
    return found + _appeal_queues(session, user) + _oversight(session, user)


def _appeal_queues(session: Session, user: Person) -> list[Queue]:
    found = []
    if any(access.decide(user, a).allowed for a in ("appeal.decide", "appeal.assign")):
        found.append(
            Queue(
                "Open appeals",
                _count(session, open_appeals()),
                "console.appeals.open_queue",
                "Appeals awaiting a Service Director's decision, with their handlers.",
            )
        )
    if access.decide(user, "appeal.lodge").allowed:
        window = current_runtime().settings.policy.appeal_window_days
        since = window_start(utcnow().date(), window)
        found.append(
            Queue(
                "Appeal windows open",
                _count(session, open_windows(since)),
                "console.appeals.windows_queue",
                f"Flags told to the person in the last {window} days: an appeal may still come.",
            )
        )
    return found


def dead_letters() -> Select[Any]:
    """Statuses the sync worker gave up on, for each configured connector (by its index)."""
    names = list(current_runtime().settings.connectors)
    return select(SyncCursor).where(SyncCursor.connector.in_(names), SyncCursor.state == "dead")


def _oversight(session: Session, user: Person) -> list[Queue]:
    """The privacy officer's and council IT's queues."""
    found = []
    if access.decide(user, "alerts.read").allowed:
        found.append(
            Queue(
                "Privacy alerts to review",
                _count(session, open_alerts()),
                "console.privacy.alert_queue",
                "Patterns of access to look into and close with a note.",
            )
        )
    if access.decide(user, "sync.manage").allowed:
        found.append(
            Queue(
                "Dead letters",
                _count(session, dead_letters()),
                "console.operations.sync_health",
                "Statuses a CRM did not take, with the reason each one failed.",
            )
        )
    return found


def _count(session: Session, query: Select[Any]) -> int:
    return session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0


def subject_of(session: Session, subject_id: str) -> Subject | None:
    return session.get(Subject, subject_id)
