"""Rows for lookup tests, inserted directly: subjects, flags, links, appeals, incidents."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sidecar.crypto import KeyRing
from sidecar.lifecycle_models import Appeal, FlagIncident, PanelDecision, StaffMember
from sidecar.models import Flag, Incident, Subject, SubjectLink
from sidecar.status import status_changed


def subject(session: Session, kind: str = "customer", ref: str = "CRM-1") -> Subject:
    found = session.scalars(select(Subject).where(Subject.kind == kind, Subject.ref == ref)).first()
    if found is None:
        found = Subject(kind=kind, ref=ref)
        session.add(found)
        session.flush()
    return found


def staff(session: Session, user_id: str, name: str, *roles: str) -> None:
    session.add(StaffMember(id=user_id, name=name, roles=list(roles)))


def flag(
    session: Session,
    ring: KeyRing,
    on: Subject,
    *,
    level: str = "red",
    state: str = "active",
    categories: tuple[str, ...] = ("physical_violence",),
    restrictions: tuple[dict[str, Any], ...] = (),
    handling: str = "",
    reason: str = "Punched an officer at the housing office",
    control_measures: str = "Visits in pairs; meet at the office",
    responsible_manager: str = "u.manager",
    review_due: date | None = date(2027, 5, 12),
    announce: bool = True,
) -> Flag:
    """A flag row as the lifecycle leaves it, announced as every real change is.

    `announce=False` writes it behind the status choke point's back, which only a test does:
    to see whether a cached status is being served.
    """
    row = Flag(
        subject=on,
        state=state,
        level=level,
        categories=list(categories),
        restrictions=[{"note": "", "ends_on": None, **item} for item in restrictions],
        handling=handling,
        responsible_manager=responsible_manager,
        review_months=12,
        review_due=review_due,
        proposed_by="u.case",
        activated_at=datetime.now(UTC) - timedelta(days=30) if state == "active" else None,
    )
    row.seal(ring, "reason", reason)
    row.seal(ring, "control_measures", control_measures)
    session.add(row)
    session.flush()
    if announce:
        status_changed(session, on)
    return row


def link(session: Session, customer: Subject, property_: Subject) -> None:
    session.add(SubjectLink(customer_id=customer.id, property_id=property_.id))
    session.flush()


def appeal(session: Session, on: Flag, manager: str = "u.senior", name: str = "Sam Senior") -> None:
    session.add(
        Appeal(
            flag_id=on.id,
            received_on=date.today(),
            lodged_by="u.case",
            handling_manager=manager,
            handling_manager_name=name,
        )
    )
    status_changed(session, on.subject)


def panel(session: Session, on: Flag, role: str, user_id: str, name: str) -> None:
    session.add(
        PanelDecision(
            flag_id=on.id,
            role=role,
            decision="approve",
            decided_by=user_id,
            decided_by_name=name,
            severity="high",
            frequency="repeated",
        )
    )


def incident(session: Session, ring: KeyRing, on: Flag, narrative: str = "Shouted threats") -> None:
    row = Incident(
        subject_id=on.subject_id,
        reported_by="u.agent",
        occurred_at=datetime(2026, 9, 1, 10, 0, tzinfo=UTC),
        channel="in_person",
        behaviour_types=["threats", "physical_violence"],
        warning_given=True,
    )
    row.seal(ring, "narrative", narrative)
    session.add(row)
    session.flush()
    session.add(FlagIncident(flag_id=on.id, incident_id=row.id))
