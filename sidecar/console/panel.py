"""The case review panel: proposals awaiting my vote, and voting with the policy's assessment."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy.orm import Session

from sidecar.audit import writer as audit
from sidecar.console.calls import call, read, show_refusal
from sidecar.console.flag_forms import panel_form
from sidecar.console.page import page, render
from sidecar.console.queues import awaiting_vote, page_of
from sidecar.console.reads import flag_case
from sidecar.register import flags
from sidecar.register.rules import Conflict, Invalid
from sidecar.register.staff import name_of
from sidecar.runtime import Runtime, current_runtime
from sidecar.storage.database import utcnow

bp = Blueprint("panel", __name__, url_prefix="/console")


def _page_number() -> int:
    value = request.args.get("page", "1")
    return int(value) if value.isdigit() and 0 < int(value) < 10_000 else 1


@page(
    bp,
    "/panel",
    action="panel.decide",
    summary="Proposals awaiting the signed-in panel member's vote, oldest first",
)
def queue() -> Any:
    number = _page_number()

    def waiting(session: Session, _runtime: Runtime) -> Any:
        shown = page_of(session, awaiting_vote(current_user), number)
        shown.rows = [
            {
                "id": flag.id,
                "subject": {"kind": flag.subject.kind, "ref": flag.subject.ref},
                "level": flag.level,
                "categories": list(flag.categories),
                "proposed_at": flag.proposed_at,
                "proposed_by": name_of(session, flag.proposed_by),
            }
            for flag in shown.rows
        ]
        return shown

    return render("console/panel_queue.html", queue=read(waiting), title="Proposals to decide")


def _seats(flag: dict[str, Any]) -> list[dict[str, Any]]:
    """The panel's roles, each with who decided in it and how, as the panel fills up."""
    settings = current_runtime().settings
    decided = {d["role"]: d for d in flag["panel"]["decisions"]}
    return [
        {"role": role, "title": settings.access.role_name(role), "decision": decided.get(role)}
        for role in settings.panel.roles
    ]


@page(
    bp,
    "/flags/<flag_id>/panel",
    methods=["GET", "POST"],
    action="panel.decide",
    confidential=True,
    summary="A panel member's vote with the assessment the policy requires; shows the three "
    "roles filling up (the record is read and audited as GET /api/v1/flags/{id})",
)
def vote(flag_id: str) -> Any:
    submitted = request.method == "POST"
    form = panel_form(current_runtime().settings, current_user.roles, submitted=submitted)
    if form.validate_on_submit():
        assessment = flags.Assessment(
            severity=form.severity.data.strip(),
            frequency=form.frequency.data.strip(),
            proportionality=form.proportionality.data.strip(),
            reasonable_adjustments=form.reasonable_adjustments.data.strip(),
        )
        try:
            state = call(
                "panel.decide",
                lambda ctx: (
                    flags.decide_panel(
                        ctx, flag_id, form.role.data, form.decision.data, assessment
                    ).state
                ),
                flag_id=flag_id,
            )
        except (Invalid, Conflict) as exc:
            show_refusal(form, exc, {"role": "role", "assessment": "severity"}, "decision")
        else:
            flash(_outcome(state, form.decision.data), "success")
            return redirect(url_for(".vote", flag_id=flag_id))
    flag, event = read(
        lambda session, runtime: flag_case(
            session, runtime, flag_id, now=utcnow(), with_details=True
        )
    )
    audit.record(event)
    open_roles = set(flag["panel"]["awaiting"]) & set(current_user.roles)
    voted = any(d["decided_by"]["id"] == current_user.id for d in flag["panel"]["decisions"])
    return render(
        "console/panel_vote.html",
        status=422 if form.errors else 200,
        form=form,
        flag=flag,
        seats=_seats(flag),
        may_vote=flag["state"] == "proposed" and bool(open_roles) and not voted,
        title="Case review",
    )


def _outcome(state: str, decision: str) -> str:
    if state == "active":
        return "Your approval is recorded. All three panel roles approved: the flag is active."
    if state == "rejected":
        return "Your decision is recorded. The proposal is rejected: no flag will be raised."
    return f"Your decision to {decision} is recorded. The panel is not yet complete."
