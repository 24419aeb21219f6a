"""Who took part in a flag's case, and how: for the uninvolved-director rule and for access."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sidecar.register.case_models import (
    Appeal,
    AppealDecision,
    FlagIncident,
    Notice,
    PanelDecision,
    Review,
    ReviewAssignment,
)
from sidecar.register.models import Flag, Incident


def involvement(session: Session, flag: Flag) -> dict[str, set[str]]:
    """Map each involved user id to the relations they have to the flag's case.

    Access counts the relations named in `sidecar.policy.access.RELATIONSHIPS`; the
    uninvolved-director rule counts every relation, `unassigned_reviewer` included.
    """
    return relations_in(
        flag,
        panel=session.execute(
            select(PanelDecision.decided_by).where(PanelDecision.flag_id == flag.id)
        ).all(),
        appeals=session.execute(
            select(Appeal.handling_manager, Appeal.decided_by).where(Appeal.flag_id == flag.id)
        ).all(),
        notices=session.execute(
            select(Notice.director_permission_by, Notice.issued_by).where(Notice.flag_id == flag.id)
        ).all(),
        reviews=session.execute(
            select(Review.reviewed_by, Review.assignment_id).where(Review.flag_id == flag.id)
        ).all(),
        assignments=open_assignments(session, flag.id),
    )


def open_assignments(session: Session, flag_id: str) -> list[ReviewAssignment]:
    """The reviewers named for the flag's next review."""
    return list(
        session.scalars(
            select(ReviewAssignment)
            .where(ReviewAssignment.flag_id == flag_id, ReviewAssignment.ended_at.is_(None))
            .order_by(ReviewAssignment.assigned_at, ReviewAssignment.reviewer)
        )
    )


def prior_involvement(session: Session, flag: Flag) -> dict[str, set[str]]:
    """Everyone with a part in the case, for the rule that an appeal goes to someone with none.

    Wider than `involvement`: it adds the people who reported the flag's incidents, the
    managers who triaged them and whoever lodged an appeal. Those parts count against deciding
    the appeal, but they are not a business need for the flag's details.
    """
    found = involvement(session, flag)

    def add(user_id: str | None, relation: str) -> None:
        if user_id:
            found.setdefault(user_id, set()).add(relation)

    incidents = session.execute(
        select(Incident.reported_by, Incident.triage_by)
        .join(FlagIncident, FlagIncident.incident_id == Incident.id)
        .where(FlagIncident.flag_id == flag.id)
    )
    for reported_by, triage_by in incidents:
        add(reported_by, "incident_reporter")
        add(triage_by, "triaging_manager")
    for (lodged_by,) in session.execute(select(Appeal.lodged_by).where(Appeal.flag_id == flag.id)):
        add(lodged_by, "appeal_lodger")
    deciders = select(AppealDecision.decided_by).where(AppealDecision.flag_id == flag.id)
    for (decided_by,) in session.execute(deciders):
        if "deciding_director" not in found.get(decided_by, ()):
            add(decided_by, "appeal_decider")
    return found


def relations_in(
    flag: Flag,
    *,
    panel: Iterable[Any],
    appeals: Iterable[Any],
    notices: Iterable[Any],
    reviews: Iterable[Any],
    assignments: Iterable[Any] = (),
) -> dict[str, set[str]]:
    """`involvement` from the case's rows when they are already read.

    Each row needs only the attributes named like the columns that name people: a panel
    decision's `decided_by`, an appeal's `handling_manager` and `decided_by`, a notice's
    `director_permission_by` and `issued_by`, a review's `reviewed_by` and `assignment_id`,
    an open review assignment's `reviewer`. A review recorded without an assignment makes
    its author `unassigned_reviewer`: involved for the director rule, but opening nothing.
    """
    found: dict[str, set[str]] = {}

    def add(user_id: str | None, relation: str) -> None:
        if user_id:
            found.setdefault(user_id, set()).add(relation)

    add(flag.proposed_by, "proposer")
    add(flag.responsible_manager, "responsible_manager")
    for decision in panel:
        add(decision.decided_by, "panel_member")
    for appeal in appeals:
        add(appeal.handling_manager, "handling_senior_manager")
        add(appeal.decided_by, "deciding_director")
    for notice in notices:
        add(notice.director_permission_by, "withheld_permission")
        add(notice.issued_by, "notice_issuer")
    for review in reviews:
        add(review.reviewed_by, "reviewer" if review.assignment_id else "unassigned_reviewer")
    for assignment in assignments:
        add(assignment.reviewer, "assigned_reviewer")
    return found
