"""Reviews in the console: flags due and overdue, and recording a review with its letter."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from sidecar.audit import writer as audit
from sidecar.console.calls import call, read, show_refusal
from sidecar.console.case_forms import VARIATION_FIELDS, ReviewersForm, ReviewForm, varying_form
from sidecar.console.formatting import uk_date
from sidecar.console.forms import options
from sidecar.console.page import may, page, render
from sidecar.console.queues import (
    flag_title,
    page_of,
    requested_page,
    review_horizon,
    reviews_due,
)
from sidecar.console.reads import flag_case
from sidecar.policy.access import role_permissions
from sidecar.register import reviews
from sidecar.register.case_models import StaffMember
from sidecar.register.rules import Conflict, Invalid
from sidecar.register.staff import name_of
from sidecar.runtime import Runtime, current_runtime
from sidecar.storage.database import utcnow

bp = Blueprint("reviews", __name__, url_prefix="/console")


def _standing(days_late: int) -> str:
    if days_late > 0:
        return f"overdue by {days_late} day{'s' if days_late != 1 else ''}"
    return "due"


@page(
    bp,
    "/reviews",
    action="flag.read",
    summary="Active flags whose review is due soon or overdue, the most overdue first (as GET "
    "/api/v1/reviews/due)",
)
def due_queue() -> Any:
    number = requested_page()
    today = utcnow().date()

    def rows(session: Session, _runtime: Runtime) -> Any:
        shown = page_of(session, reviews_due(review_horizon(today)), number)
        shown.rows = [
            {
                "href": url_for(".record", flag_id=flag.id)
                if may("review.record")
                else url_for(
                    "console.subjects.subject", kind=flag.subject.kind, ref=flag.subject.ref
                ),
                "title": flag_title(flag),
                "text": f"Review due {uk_date(flag.review_due)}, "
                f"{_standing((today - flag.review_due).days)}. Responsible manager: "
                f"{name_of(session, flag.responsible_manager)}.",
            }
            for flag in shown.rows
        ]
        return shown

    return render(
        "console/flag_queue.html",
        queue=read(rows),
        title="Reviews due or overdue",
        intro="An overdue flag stays on the banner until it is reviewed: staff must not lose a "
        "warning because its review is late.",
        empty="No flag's review is due.",
    )


@page(
    bp,
    "/flags/<flag_id>/review",
    methods=["GET", "POST"],
    action="review.record",
    summary="Record a review of an active flag (as POST /api/v1/flags/{id}/reviews); a person "
    "who was told of the flag is sent the outcome letter",
)
def record(flag_id: str) -> Any:
    flag, event = read(lambda session, runtime: flag_case(session, runtime, flag_id, now=utcnow()))
    form = varying_form(ReviewForm, current_runtime().settings, flag)
    if form.validate_on_submit():
        change = form.change(flag)
        try:
            letter = call(
                "review.record",
                lambda ctx: _letter_number(
                    reviews.record_review(ctx, flag_id, form.outcome.data, form.notes.data, change)
                ),
                flag_id=flag_id,
            )
        except (Invalid, Conflict) as exc:
            show_refusal(form, exc, VARIATION_FIELDS | {"notes": "notes"}, "outcome")
        else:
            if letter is not None:
                flash("The review is recorded and the outcome letter written.", "success")
                return redirect(url_for("console.notices.letter", flag_id=flag_id, n=letter))
            flash("The review is recorded. The person was not told of the flag, so no letter.")
            return redirect(url_for(".due_queue"))
    audit.record(event)
    return render(
        "console/review.html",
        status=422 if form.errors else 200,
        form=form,
        flag=flag,
        title="Review the flag",
    )


def _letter_number(recorded: tuple[Any, Any]) -> int | None:
    _review, letter = recorded
    return letter.n if letter is not None else None


def _reviewers(session: Session, runtime: Runtime) -> list[tuple[str, str]]:
    """Staff last seen in a role that records reviews, by name; never the person assigning."""
    staff = session.scalars(select(StaffMember).order_by(StaffMember.name, StaffMember.id))
    return [
        (m.id, m.name or m.id)
        for m in staff
        if m.id != current_user.id
        and reviews.REVIEW_PERMISSION in role_permissions(runtime.settings, tuple(m.roles or ()))
    ]


@page(
    bp,
    "/flags/<flag_id>/reviewers",
    methods=["GET", "POST"],
    action="review.assign",
    summary="Name who reviews an active flag next (as POST /api/v1/flags/{id}/review-"
    "assignments); only they may record the review",
)
def assign(flag_id: str) -> Any:
    form = ReviewersForm()
    form.reviewers.choices = options(read(_reviewers))
    if form.validate_on_submit():
        try:
            names = call(
                "review.assign",
                lambda ctx: [
                    name_of(ctx.session, row.reviewer) or row.reviewer
                    for row in reviews.assign_reviewers(ctx, flag_id, form.reviewers.data)
                ],
                flag_id=flag_id,
            )
        except (Invalid, Conflict) as exc:
            show_refusal(form, exc, {}, "reviewers")
        else:
            flash(f"The next review is assigned to {' and '.join(names)}.", "success")
            return redirect(url_for(".due_queue"))
    flag, event = read(lambda session, runtime: flag_case(session, runtime, flag_id, now=utcnow()))
    audit.record(event)
    assigned = flag.get("review_assignment") or {}
    if not form.is_submitted():
        form.reviewers.data = [r["id"] for r in assigned.get("reviewers", [])]
    return render(
        "console/review_assign.html",
        status=422 if form.errors else 200,
        form=form,
        flag=flag,
        assigned=assigned,
        title="Assign the review",
    )
