"""Reviews: due a review period after activation (or the last review); overdue ones reported."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sidecar.register import flags as flag_service
from sidecar.register import history, notices
from sidecar.register.case_models import Letter, Notice, Review
from sidecar.register.context import ServiceContext
from sidecar.register.models import Flag, Subject
from sidecar.register.rules import (
    REVIEW_OUTCOMES,
    Action,
    Invalid,
    State,
    add_months,
    notice_overdue,
    require,
    review_standing,
)
from sidecar.register.status import status_changed
from sidecar.settings import Settings


def record_review(
    ctx: ServiceContext,
    flag_id: str,
    outcome: str,
    notes: str,
    change: flag_service.TermsChange | None = None,
) -> tuple[Review, Letter | None]:
    """Continue, vary or remove; a person who was told of the flag is told of the outcome."""
    session = ctx.session
    now = ctx.now()
    if outcome not in REVIEW_OUTCOMES:
        raise Invalid(f"outcome must be one of {', '.join(REVIEW_OUTCOMES)}, not {outcome!r}")
    if not notes.strip():
        raise Invalid("record the review's reasoning (notes)")
    flag = flag_service.load(session, flag_id, for_update=True)
    require(flag.state, Action.REVIEW)
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
        + (f"; outcome letter {letter.n}" if letter else ""),
        from_state=before,
        facts=facts,
        at=now,
    )
    return review, letter


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
