"""The console's work queues: what waits for the signed-in person, counted and paged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Select, exists, false, func, or_, select
from sqlalchemy.orm import Session, joinedload

from sidecar.lookup.alerts import open_alerts
from sidecar.policy import access
from sidecar.register.case_models import PanelDecision
from sidecar.register.models import Flag, Incident, Subject
from sidecar.register.rules import PANEL_ROLES, State
from sidecar.runtime import current_runtime
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
    they have not decided in another role (the panel is three distinct people)."""
    roles = [role for role in PANEL_ROLES if role in user.roles]
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
    found += _oversight(session, user)
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
