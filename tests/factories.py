"""Rows for tests in every folder, inserted directly: subjects, flags, links, appeals, incidents."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from alembic import command
from sqlalchemy import select
from sqlalchemy.orm import Session

from sidecar.register.case_models import (
    Appeal,
    FlagIncident,
    Notice,
    PanelDecision,
    Review,
    ReviewAssignment,
    StaffMember,
)
from sidecar.register.models import Flag, Incident, Subject, SubjectLink
from sidecar.register.status import status_changed
from sidecar.storage.crypto import KeyRing
from sidecar.storage.database import Database


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
    adjustments: tuple[str, ...] = (),
    reason: str = "Punched an officer at the housing office",
    control_measures: str = "Visits in pairs; meet at the office",
    reasonable_adjustments: str | None = None,
    responsible_manager: str = "u.manager",
    proposed_by: str = "u.case",
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
        adjustments=list(adjustments),
        responsible_manager=responsible_manager,
        review_months=12,
        review_due=review_due,
        proposed_by=proposed_by,
        activated_at=datetime.now(UTC) - timedelta(days=30) if state == "active" else None,
    )
    row.seal(ring, "reason", reason)
    row.seal(ring, "control_measures", control_measures)
    row.seal(ring, "reasonable_adjustments", reasonable_adjustments)
    session.add(row)
    session.flush()
    if announce:
        status_changed(session, on)
    return row


def link(session: Session, customer: Subject, property_: Subject) -> None:
    session.add(SubjectLink(customer_id=customer.id, property_id=property_.id))
    session.flush()


def appeal(
    session: Session,
    on: Flag,
    manager: str = "u.senior",
    name: str = "Sam Senior",
    *,
    received_on: date | None = None,
    lodged_at: datetime | None = None,
    outcome: str | None = None,
    decided_by: str | None = None,
) -> None:
    session.add(
        Appeal(
            flag_id=on.id,
            received_on=received_on or date.today(),
            lodged_by="u.case",
            lodged_at=lodged_at or datetime.now(UTC),
            handling_manager=manager,
            handling_manager_name=name,
            outcome=outcome,
            decided_by=decided_by,
            decided_at=datetime.now(UTC) if decided_by else None,
        )
    )
    status_changed(session, on.subject)


def panel(
    session: Session,
    on: Flag,
    role: str,
    user_id: str,
    name: str,
    *,
    decision: str = "approve",
    decided_at: datetime | None = None,
) -> None:
    session.add(
        PanelDecision(
            flag_id=on.id,
            role=role,
            decision=decision,
            decided_by=user_id,
            decided_by_name=name,
            decided_at=decided_at or datetime.now(UTC),
        )
    )


def notice(
    session: Session,
    on: Flag,
    issued_by: str = "u.case",
    *,
    method: str = "letter",
    issued_at: datetime | None = None,
    director_permission_by: str | None = None,
    handling_manager: tuple[str, str] | None = None,
) -> None:
    """A notice; `handling_manager` (id, name) is the Senior Manager the letter named."""
    manager, name = handling_manager or (None, "")
    on.notice_at = issued_at or datetime.now(UTC)
    session.add(
        Notice(
            flag_id=on.id,
            method=method,
            issued_by=issued_by,
            issued_at=on.notice_at,
            director_permission_by=director_permission_by,
            handling_manager=manager,
            handling_manager_name=name,
        )
    )
    status_changed(session, on.subject)


def review_assignment(
    session: Session, on: Flag, reviewer: str, *, ended: bool = False
) -> ReviewAssignment:
    row = ReviewAssignment(
        flag_id=on.id,
        reviewer=reviewer,
        assigned_by="u.csm.lead",
        assigned_at=datetime.now(UTC),
        ended_at=datetime.now(UTC) if ended else None,
    )
    session.add(row)
    session.flush()
    return row


def review(
    session: Session,
    on: Flag,
    reviewed_by: str = "u.manager",
    *,
    outcome: str = "continue",
    reviewed_at: datetime | None = None,
    assigned: bool = True,
) -> None:
    """A recorded review; `assigned=False` as recorded before reviews were assigned."""
    assignment = review_assignment(session, on, reviewed_by, ended=True) if assigned else None
    session.add(
        Review(
            flag_id=on.id,
            outcome=outcome,
            reviewed_by=reviewed_by,
            reviewed_at=reviewed_at or datetime.now(UTC),
            assignment_id=assignment.id if assignment else None,
        )
    )


def incident(
    session: Session,
    ring: KeyRing,
    on: Flag,
    narrative: str = "Shouted threats",
    *,
    occurred_at: datetime | None = None,
    channel: str = "in_person",
    behaviour_types: tuple[str, ...] = ("threats", "physical_violence"),
    warning_given: bool = True,
) -> str:
    row = Incident(
        subject_id=on.subject_id,
        reported_by="u.agent",
        occurred_at=occurred_at or datetime(2026, 9, 1, 10, 0, tzinfo=UTC),
        channel=channel,
        behaviour_types=list(behaviour_types),
        warning_given=warning_given,
    )
    row.seal(ring, "narrative", narrative)
    session.add(row)
    session.flush()
    session.add(FlagIncident(flag_id=on.id, incident_id=row.id))
    return row.id


def migrated_to(database: Database, revision: str) -> None:
    """Build the schema only up to `revision`, as an older release left it, for a test to fill
    before `database.migrate()` takes it the rest of the way."""
    config = database._alembic()
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
