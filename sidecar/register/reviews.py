"""Reviews: due a review period after activation (or the last review); overdue ones reported."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sidecar.policy.access import role_permissions
from sidecar.policy.involvement import open_assignments
from sidecar.register import flags as flag_service
from sidecar.register import history, notices
from sidecar.register.case_models import Letter, Notice, Review, ReviewAssignment, StaffMember
from sidecar.register.context import ServiceContext
from sidecar.register.models import Flag, Subject
from sidecar.register.rules import (
    REVIEW_OUTCOMES,
    Action,
    Forbidden,
    Invalid,
    State,
    add_months,
    notice_overdue,
    require,
    review_standing,
)
from sidecar.register.staff import name_of
from sidecar.register.status import status_changed
from sidecar.settings import Settings

REVIEW_PERMISSION = "review.record"


def _check_reviewer(ctx: ServiceContext, user_id: str) -> str:
    """A reviewer is someone else, known to the directory in a role that records reviews."""
    user_id = user_id.strip()
    if user_id == ctx.actor.id:
        raise Forbidden(
            "you cannot assign yourself to review a flag; another Customer Support Manager "
            "must name you"
        )
    member = ctx.session.get(StaffMember, user_id)
    if member is None:
        raise Invalid(
            f"reviewers: {user_id!r} is not in the staff directory (they must have signed in "
            "to Forewarn)"
        )
    if REVIEW_PERMISSION not in role_permissions(ctx.settings, tuple(member.roles)):
        raise Invalid(
            f"reviewers: {user_id!r} cannot record reviews (roles last seen: "
            f"{', '.join(member.roles) or 'none'})"
        )
    return user_id


def assign_reviewers(
    ctx: ServiceContext, flag_id: str, reviewers: list[str]
) -> list[ReviewAssignment]:
    """Name who reviews an active flag next; the names replace any open assignment."""
    session = ctx.session
    now = ctx.now()
    named = list(dict.fromkeys(r.strip() for r in reviewers if r.strip()))
    if not named:
        raise Invalid("reviewers: name at least one reviewer")
    flag = flag_service.load(session, flag_id, for_update=True)
    require(flag.state, Action.REVIEW)
    checked = [_check_reviewer(ctx, user_id) for user_id in named]
    for previous in open_assignments(session, flag.id):
        previous.ended_at = now
    rows = [
        ReviewAssignment(
            flag_id=flag.id, reviewer=user_id, assigned_by=ctx.actor.id, assigned_at=now
        )
        for user_id in checked
    ]
    session.add_all(rows)
    history.record(
        ctx,
        flag,
        "review_assigned",
        "next review assigned to " + ", ".join(name_of(session, r) or r for r in checked),
        from_state=flag.state,
        facts={"reviewers": checked},
        at=now,
    )
    return rows


def _assignment_of(ctx: ServiceContext, flag: Flag) -> ReviewAssignment:
    """The open assignment naming the actor; refused to anyone it does not name."""
    assigned = open_assignments(ctx.session, flag.id)
    for assignment in assigned:
        if assignment.reviewer == ctx.actor.id:
            return assignment
    raise Forbidden(
        "only the reviewers the flag's review assignment names may review it; "
        + (
            f"it names {', '.join(a.reviewer for a in assigned)}"
            if assigned
            else "no review is assigned yet (the Customer Support Manager assigns one)"
        )
    )


def _party(ctx: ServiceContext, user_id: str, part: str) -> dict[str, Any]:
    member = ctx.session.get(StaffMember, user_id)
    return {
        "id": user_id,
        "name": member.name if member else "",
        "roles": list(member.roles) if member else [],
        "part": part,
    }


def _parties(
    ctx: ServiceContext, assigned: list[ReviewAssignment], agreed_with: str | None
) -> list[dict[str, Any]]:
    """Everyone taking part in the review, checked against the settings' `[reviews]`."""
    settings = ctx.settings.reviews
    access = ctx.settings.access
    parties = [_party(ctx, a.reviewer, "reviewer") for a in assigned]
    by = _listed(access.role_name(r) for r in settings.reviewer_roles)
    for role in settings.reviewer_roles:
        if not any(role in party["roles"] for party in parties):
            raise Invalid(
                f"reviewers: the review is by {by}; none assigned is a "
                f"{access.role_name(role)} (reviews.reviewer_roles)"
            )
    wanted = settings.agreed_with_role
    if agreed_with is None:
        if wanted:
            raise Invalid(
                f"agreed_with: name the {access.role_name(wanted)} the review's "
                "recommendations were agreed with"
            )
        return parties
    agreed_with = agreed_with.strip()
    if agreed_with in {party["id"] for party in parties}:
        raise Invalid(f"agreed_with: {agreed_with!r} is one of the reviewers")
    party = _party(ctx, agreed_with, "agreed_with")
    if ctx.session.get(StaffMember, agreed_with) is None:
        raise Invalid(
            f"agreed_with: {agreed_with!r} is not in the staff directory (they must have "
            "signed in to Forewarn)"
        )
    if wanted and wanted not in party["roles"]:
        raise Invalid(f"agreed_with: {agreed_with!r} is not a {access.role_name(wanted)}")
    return [*parties, party]


def _listed(names: Iterable[str]) -> str:
    names = list(names)
    return " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else "".join(names)


def record_review(
    ctx: ServiceContext,
    flag_id: str,
    outcome: str,
    notes: str,
    change: flag_service.TermsChange | None = None,
    *,
    agreed_with: str | None = None,
) -> tuple[Review, Letter | None]:
    """Continue, vary or remove; a person who was told of the flag is told of the outcome.

    Only a reviewer the flag's open review assignment names may record it; the review uses
    the assignment up, so the next review is assigned afresh.
    """
    session = ctx.session
    now = ctx.now()
    if outcome not in REVIEW_OUTCOMES:
        raise Invalid(f"outcome must be one of {', '.join(REVIEW_OUTCOMES)}, not {outcome!r}")
    if not notes.strip():
        raise Invalid("record the review's reasoning (notes)")
    flag = flag_service.load(session, flag_id, for_update=True)
    require(flag.state, Action.REVIEW)
    assignment = _assignment_of(ctx, flag)
    assigned = open_assignments(session, flag.id)
    parties = _parties(ctx, assigned, agreed_with)
    for used in assigned:
        used.ended_at = now
    before = flag.state
    was_due = flag.review_due
    facts: dict[str, Any] = {
        "outcome": outcome,
        "was_due": was_due.isoformat() if was_due else None,
    }
    if outcome == "vary" and change is not None and change.changed:
        facts["variation"] = flag_service.vary(ctx.settings, flag, change, now.date())
    if outcome == "remove":
        flag_service.end(session, flag, State.REMOVED, now)
        next_due = None
    else:
        next_due = add_months(now.date(), flag.review_months)
        flag.review_due = next_due
        status_changed(session, flag.subject)
    review = Review(
        flag_id=flag.id,
        outcome=outcome,
        reviewed_by=ctx.actor.id,
        reviewed_at=now,
        was_due=was_due,
        next_review_due=next_due,
        assignment_id=assignment.id,
        parties=parties,
    )
    review.seal(ctx.keyring, "notes", notes.strip())
    session.add(review)
    letter = None
    notice = notices.notice_of(session, flag)
    if notice is not None and notice.method == "letter":
        letter = notices.write_letter(
            ctx,
            flag,
            "review_outcome",
            ctx.actor.id,
            extra={"outcome": outcome, "notes": notes.strip()},
            now=now,
        )
        facts["letter"] = letter.n
    history.record(
        ctx,
        flag,
        "reviewed",
        f"review: {outcome}"
        + (f"; next review by {next_due}" if next_due else "")
        + (f"; outcome letter {letter.n}" if letter else "")
        + _agreed(parties),
        from_state=before,
        facts=facts | _party_facts(parties),
        at=now,
    )
    return review, letter


def _agreed(parties: list[dict[str, Any]]) -> str:
    agreed = [p["name"] or p["id"] for p in parties if p["part"] == "agreed_with"]
    reviewers = [p["name"] or p["id"] for p in parties if p["part"] == "reviewer"]
    if not agreed:
        return ""
    return f"; by {_listed(reviewers)}, agreed with {_listed(agreed)}"


def _party_facts(parties: list[dict[str, Any]]) -> dict[str, Any]:
    """Who took part, in the history's facts, where more than the recorder took part."""
    if len(parties) < 2:
        return {}
    return {"parties": [{"id": p["id"], "part": p["part"]} for p in parties]}


def due(session: Session, settings: Settings, today: date) -> list[dict[str, Any]]:
    """Active flags whose review is due soon or overdue, most overdue first.

    Overdue flags stay active (and on the banner): hiding a warning because paperwork is
    late would put staff at risk. They are listed here until someone reviews them.
    """
    horizon = settings.lifecycle.review_due_soon_days
    rows = session.execute(
        select(Flag, Subject)
        .join(Subject, Subject.id == Flag.subject_id)
        .where(Flag.state == State.ACTIVE.value, Flag.review_due.is_not(None))
        .order_by(Flag.review_due, Flag.id)
    ).all()
    found = []
    for flag, subject in rows:
        standing = review_standing(flag.review_due, today, horizon)
        if standing is None:
            continue
        found.append(
            {
                "id": flag.id,
                "subject": {"kind": subject.kind, "ref": subject.ref},
                "level": flag.level,
                "categories": list(flag.categories),
                "responsible_manager": flag.responsible_manager,
                "review_due": flag.review_due.isoformat(),
                "standing": standing,
                "days_overdue": max(0, (today - flag.review_due).days),
                "provenance": flag.provenance,
            }
        )
    return found


def notices_overdue(session: Session, settings: Settings, now: datetime) -> list[dict[str, Any]]:
    """Active flags still without a letter or recorded exception after notice_due_days."""
    rows = session.execute(
        select(Flag, Subject)
        .join(Subject, Subject.id == Flag.subject_id)
        .outerjoin(Notice, Notice.flag_id == Flag.id)
        .where(Flag.state == State.ACTIVE.value, Notice.id.is_(None))
        .order_by(Flag.activated_at)
    ).all()
    days = settings.policy.notice_due_days
    return [
        {
            "id": flag.id,
            "subject": {"kind": subject.kind, "ref": subject.ref},
            "activated_at": flag.activated_at.isoformat() if flag.activated_at else None,
            "notice_due_days": days,
        }
        for flag, subject in rows
        if notice_overdue(flag.activated_at, False, now, days)
    ]
