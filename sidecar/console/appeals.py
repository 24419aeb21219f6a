"""Appeals in the console: lodged, assigned a handling Senior Manager, listed with their
windows, and decided by a Service Director who took no part in the case."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, flash, redirect, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from sidecar.audit import writer as audit
from sidecar.console.calls import call, read, show_refusal
from sidecar.console.case_forms import (
    VARIATION_FIELDS,
    AppealDecisionForm,
    AppealForm,
    HandlerForm,
    varying_form,
)
from sidecar.console.formatting import uk_date, words
from sidecar.console.forms import options
from sidecar.console.page import page, render
from sidecar.console.queues import (
    PAGE_SIZE,
    Page,
    flag_title,
    open_appeals,
    page_of,
    requested_page,
)
from sidecar.console.reads import flag_case
from sidecar.policy.involvement import involvement
from sidecar.register import appeals, flags, notices
from sidecar.register.case_models import StaffMember
from sidecar.register.rules import Conflict, Invalid, NotFound, appeal_deadline
from sidecar.runtime import Runtime, current_runtime
from sidecar.settings import Settings
from sidecar.storage.database import utcnow

bp = Blueprint("appeals", __name__, url_prefix="/console")

TOLD = {"letter": "Decision letter sent", "withheld": "Letter withheld on a recorded exception"}


def _window_closes(session: Session, runtime: Runtime, flag: Any) -> date | None:
    day = notices.notice_day(session, flag)
    return appeal_deadline(day, runtime.settings.policy.appeal_window_days) if day else None


@page(
    bp,
    "/appeals",
    action="flag.read",
    summary="Appeals awaiting a Service Director's decision, with their windows and handlers",
)
def open_queue() -> Any:
    number = requested_page()

    def rows(session: Session, runtime: Runtime) -> Any:
        shown = page_of(session, open_appeals(), number)
        found = []
        for flag in shown.rows:
            appeal = appeals.pending_appeal(session, flag)
            assert appeal is not None
            found.append(
                {
                    "flag_id": flag.id,
                    "appeal_id": appeal.id,
                    "title": flag_title(flag),
                    "received_on": appeal.received_on,
                    "window_closes": _window_closes(session, runtime, flag),
                    "handler": appeals.handling_name(session, appeal),
                }
            )
        shown.rows = found
        return shown

    return render("console/appeals_queue.html", queue=read(rows), title="Open appeals")


@page(
    bp,
    "/appeals/windows",
    action="appeal.lodge",
    summary="Active flags whose appeal window is still open and no appeal is pending, the "
    "window closing first, first (as GET /api/v1/appeal-windows)",
)
def windows_queue() -> Any:
    number = requested_page()
    days = current_runtime().settings.policy.appeal_window_days

    def rows(session: Session, _runtime: Runtime) -> Any:
        windows, total = appeals.open_windows_page(
            session, utcnow().date(), days, number, PAGE_SIZE
        )
        return Page(
            [
                {
                    "href": url_for(".lodge", flag_id=window.flag.id),
                    "title": flag_title(window.flag),
                    "text": f"{TOLD[window.method]} {uk_date(window.told_on)}. "
                    f"The appeal window closes {uk_date(window.closes_on)}.",
                }
                for window in windows
            ],
            total,
            number,
        )

    return render(
        "console/flag_queue.html",
        queue=read(rows),
        title="Appeal windows open",
        intro=f"A person may appeal in writing within {days} days of being told of the flag.",
        empty="No flag's appeal window is open.",
    )


def _case(flag_id: str, *, with_details: bool = False) -> dict[str, Any]:
    flag, event = read(
        lambda session, runtime: flag_case(
            session, runtime, flag_id, now=utcnow(), with_details=with_details
        )
    )
    audit.record(event)
    return flag


@page(
    bp,
    "/flags/<flag_id>/appeals/new",
    methods=["GET", "POST"],
    action="appeal.lodge",
    summary="Record an appeal received in writing (as POST /api/v1/flags/{id}/appeals); "
    "refused once the window has closed",
)
def lodge(flag_id: str) -> Any:
    form = AppealForm()
    if form.validate_on_submit():
        try:
            call(
                "appeal.lodge",
                lambda ctx: (
                    appeals.lodge(
                        ctx, flag_id, received_on=form.received_on.data, grounds=form.grounds.data
                    ).id
                ),
                flag_id=flag_id,
            )
        except (Invalid, Conflict) as exc:
            fields = {"received_on": "received_on", "window": "received_on"}
            show_refusal(form, exc, fields, "grounds")
        else:
            flash("The appeal is recorded.", "success")
            return redirect(url_for(".open_queue"))
    return render(
        "console/appeal_lodge.html",
        status=422 if form.errors else 200,
        form=form,
        flag=_case(flag_id),
        title="Record an appeal",
    )


def _handlers(session: Session, settings: Settings) -> list[tuple[str, str]]:
    """Staff last seen holding the appeal handler role (appeals.handler_role), by name."""
    role = settings.appeals.handler_role
    staff = session.scalars(select(StaffMember).order_by(StaffMember.name, StaffMember.id))
    return [(m.id, m.name or m.id) for m in staff if role in (m.roles or [])]


def _appeal(session: Session, flag_id: str, appeal_id: str) -> dict[str, Any]:
    flag = flags.load(session, flag_id)
    found = next((a for a in appeals.appeals_of(session, flag) if a.id == appeal_id), None)
    if found is None:
        raise NotFound(f"flag {flag_id} has no appeal {appeal_id}")
    return {
        "id": found.id,
        "pending": found.outcome is None,
        "outcome": found.outcome,
        "received_on": found.received_on,
        "handler_id": found.handling_manager,
        "handler": appeals.handling_name(session, found),
    }


@page(
    bp,
    "/flags/<flag_id>/appeals/<appeal_id>/handler",
    methods=["GET", "POST"],
    action="appeal.assign",
    summary="The Customer Support Manager assigns the Senior Manager who handles an appeal",
)
def assign(flag_id: str, appeal_id: str) -> Any:
    managers = read(lambda session, runtime: _handlers(session, runtime.settings))
    form = HandlerForm()
    form.manager.label.text = (
        f"Which {appeals.handler_title(current_runtime().settings)} handles it?"
    )
    form.manager.choices = options(managers)
    if form.validate_on_submit():
        try:
            name = call(
                "appeal.assign",
                lambda ctx: (
                    appeals.assign_handler(
                        ctx, flag_id, appeal_id, form.manager.data
                    ).handling_manager_name
                ),
                flag_id=flag_id,
            )
        except (Invalid, Conflict) as exc:
            show_refusal(form, exc, {}, "manager")
        else:
            flash(f"{name} now handles the appeal.", "success")
            return redirect(url_for(".open_queue"))
    appeal = read(lambda session, _runtime: _appeal(session, flag_id, appeal_id))
    if form.manager.data is None:
        form.manager.data = appeal["handler_id"]
    return render(
        "console/appeal_handler.html",
        status=422 if form.errors else 200,
        form=form,
        flag=_case(flag_id),
        appeal=appeal,
        title="Assign the appeal",
    )


def _my_part(session: Session, settings: Settings, flag_id: str) -> list[str]:
    """How the signed-in person took part in the case, in words, where that keeps them from
    deciding (none: they may decide, as do those holding a deciding role that need not be
    uninvolved, appeals.uninvolved_roles)."""
    held = [role for role in settings.appeals.decider_roles if role in current_user.roles]
    if any(role not in settings.appeals.uninvolved_roles for role in held):
        return []
    relations = involvement(session, flags.load(session, flag_id)).get(current_user.id, set())
    return sorted(words(r) for r in relations)


@page(
    bp,
    "/flags/<flag_id>/appeals/<appeal_id>/decision",
    methods=["GET", "POST"],
    action="appeal.decide",
    confidential=True,
    summary="A Service Director's decision on an appeal (as POST /api/v1/flags/{id}/appeals/"
    "{appeal_id}/decision); the form is shown only to a director who took no part in the case",
)
def decide(flag_id: str, appeal_id: str) -> Any:
    part = read(lambda session, runtime: _my_part(session, runtime.settings, flag_id))
    flag, event = read(
        lambda session, runtime: flag_case(
            session, runtime, flag_id, now=utcnow(), with_details=not part
        )
    )
    form = varying_form(AppealDecisionForm, current_runtime().settings, flag)
    if form.validate_on_submit():
        change = form.change(flag)
        try:
            letter = call(
                "appeal.decide",
                lambda ctx: appeals.decide(
                    ctx, flag_id, appeal_id, form.outcome.data, form.reasons.data, change
                )[1],
                flag_id=flag_id,
            )
        except (Invalid, Conflict) as exc:
            show_refusal(form, exc, VARIATION_FIELDS | {"reasons": "reasons"}, "outcome")
        else:
            if letter is None:
                flash("Your decision is recorded; the other deciders must agree.", "success")
                return redirect(url_for(".decide", flag_id=flag_id, appeal_id=appeal_id))
            flash("Your decision is recorded and the outcome letter written.", "success")
            return redirect(url_for("console.notices.letter", flag_id=flag_id, n=letter.n))
    appeal = read(lambda session, _runtime: _appeal(session, flag_id, appeal_id))
    audit.record(event)
    return render(
        "console/appeal_decision.html",
        status=422 if form.errors else 200,
        form=form,
        flag=flag,
        appeal=appeal,
        part=part,
        title="Decide the appeal",
    )
