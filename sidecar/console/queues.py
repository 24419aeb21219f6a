"""The console's work queues: what waits for the signed-in person, counted and paged."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Protocol

from flask import request
from sqlalchemy import Select, exists, false, func, or_, select
from sqlalchemy.orm import Session, joinedload

from sidecar.lookup.alerts import open_alerts
from sidecar.policy import access
from sidecar.register.appeals import open_windows, window_start
from sidecar.register.case_models import Appeal, PanelDecision, WithholdingGuidance
from sidecar.register.models import Flag, Incident, Subject
from sidecar.register.rules import State
from sidecar.runtime import current_runtime
from sidecar.storage.database import utcnow
from sidecar.sync.models import SyncCursor

PAGE_SIZE = 25


class Person(Protocol):
    id: str
    roles: tuple[str, ...]


HOME_COUNT_LIMIT = 1000
"""The home page counts a queue up to this many: past it, it says "over 1,000", so that its
queries read a bounded number of index entries however large the register grows."""


@dataclass(frozen=True)
class Queue:
    """One work queue on the home page: what it holds, how many, and where to work it."""

    title: str
    count: int
    endpoint: str
    description: str

    @property
    def shown(self) -> str:
        """The count as the home page says it."""
        if self.count > HOME_COUNT_LIMIT:
            return f"over {HOME_COUNT_LIMIT:,}"
        return f"{self.count:,}"


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
        .where(Flag.state == State.ACTIVE.value, Flag.notice_at.is_(None))
        .order_by(Flag.activated_at, Flag.id)
    )


def awaiting_permission() -> Select[Any]:
    """Active flags whose letter the Head of Legal advises withholding, awaiting a director
    (a refused permission waits no more)."""
    advised = exists().where(
        WithholdingGuidance.flag_id == Flag.id, WithholdingGuidance.refused_at.is_(None)
    )
    return awaiting_notice().where(advised)


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


def dead_letters() -> Select[Any]:
    """Statuses the sync worker gave up on, for each configured connector (by its index)."""
    names = list(current_runtime().settings.connectors)
    return select(SyncCursor).where(SyncCursor.connector.in_(names), SyncCursor.state == "dead")


def _appeal_window_days() -> int:
    return current_runtime().settings.policy.appeal_window_days


@dataclass(frozen=True)
class QueueKind:
    """A queue the home page shows to whoever may do any of `actions`."""

    title: str
    actions: tuple[str, ...]
    endpoint: str
    description: Callable[[], str]
    query: Callable[[Person], Select[Any]]


HOME_QUEUES = (
    QueueKind(
        "Incidents to triage",
        ("incident.triage",),
        "console.incidents.triage_queue",
        lambda: "Incidents no manager has decided on yet, the longest waiting first.",
        lambda _user: untriaged(),
    ),
    QueueKind(
        "Proposals awaiting your vote",
        ("panel.decide",),
        "console.panel.queue",
        lambda: "Flags proposed for case review that need your decision.",
        awaiting_vote,
    ),
    QueueKind(
        "Flags awaiting a notice",
        ("notice.issue", "notice.record_guidance"),
        "console.notices.awaiting_notice_queue",
        lambda: "Active flags the person has not yet been told of by letter or exception.",
        lambda _user: awaiting_notice(),
    ),
    QueueKind(
        "Withheld letters awaiting your permission",
        ("notice.permit_withheld",),
        "console.notices.awaiting_permission_queue",
        lambda: "Legal guidance advises withholding these decision letters.",
        lambda _user: awaiting_permission(),
    ),
    QueueKind(
        "Reviews due or overdue",
        ("review.record",),
        "console.reviews.due_queue",
        lambda: "Active flags to review, the most overdue first.",
        lambda _user: reviews_due(review_horizon(utcnow().date())),
    ),
    QueueKind(
        "Open appeals",
        ("appeal.decide", "appeal.assign"),
        "console.appeals.open_queue",
        lambda: "Appeals awaiting a Service Director's decision, with their handlers.",
        lambda _user: open_appeals(),
    ),
    QueueKind(
        "Appeal windows open",
        ("appeal.lodge",),
        "console.appeals.windows_queue",
        lambda: (
            f"Flags told to the person in the last {_appeal_window_days()} days: "
            "an appeal may still come."
        ),
        lambda _user: open_windows(window_start(utcnow().date(), _appeal_window_days())),
    ),
    QueueKind(
        "Privacy alerts to review",
        ("alerts.read",),
        "console.privacy.alert_queue",
        lambda: "Patterns of access to look into and close with a note.",
        lambda _user: open_alerts(),
    ),
    QueueKind(
        "Dead letters",
        ("sync.manage",),
        "console.operations.sync_health",
        lambda: "Statuses a CRM did not take, with the reason each one failed.",
        lambda _user: dead_letters(),
    ),
)
"""The home page's queues, in the order it shows them."""


def for_user(session: Session, user: Person) -> list[Queue]:
    """The queues the person's roles give them, each with its count."""
    return [
        Queue(
            kind.title,
            _count_to_limit(session, kind.query(user)),
            kind.endpoint,
            kind.description(),
        )
        for kind in HOME_QUEUES
        if any(access.decide(user, action).allowed for action in kind.actions)
    ]


def home_queries(user: Person) -> dict[str, Select[Any]]:
    """Each home-page queue's count query for `user`, by queue title (for the bench)."""
    return {kind.title: _bounded(kind.query(user)) for kind in HOME_QUEUES}


def _bounded(query: Select[Any]) -> Select[Any]:
    limited = query.order_by(None).limit(HOME_COUNT_LIMIT + 1).subquery()
    return select(func.count()).select_from(limited)


def _count_to_limit(session: Session, query: Select[Any]) -> int:
    """How many rows `query` has, counted up to one past HOME_COUNT_LIMIT."""
    return session.scalar(_bounded(query)) or 0


def _count(session: Session, query: Select[Any]) -> int:
    return session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0


def subject_of(session: Session, subject_id: str) -> Subject | None:
    return session.get(Subject, subject_id)
