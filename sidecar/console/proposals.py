"""Proposing a flag on a subject from its incidents, for the case review panel."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, url_for
from sqlalchemy.orm import Session

from sidecar.console.calls import call, read, show_refusal
from sidecar.console.flag_forms import adjustment_lines, proposal_form
from sidecar.console.formatting import uk_date
from sidecar.console.page import page, render
from sidecar.register import flags, incidents, subjects
from sidecar.register.rules import FlagTerms, Invalid
from sidecar.runtime import Runtime, current_runtime

bp = Blueprint("proposals", __name__, url_prefix="/console/subjects")

# Words in the flag service's refusals, and the field each concerns.
PROPOSAL_FIELDS = {
    # First: a warning's problems name no_warning_reason, which also contains "reason".
    "warning": "warning_given_on",
    "names are given": "protected_people",
    "protects": "protects",
    "level": "level",
    "categor": "categories",
    "restriction": "restrictions",
    "reason": "reason",
    "control_measures": "control_measures",
    "responsible_manager": "responsible_manager",
    "incident": "incident_ids",
}


def _incident_options(session: Session, runtime: Runtime, kind: str, ref: str) -> list:
    """The subject's incidents as checkbox options: when and what, never the narrative."""
    _subject, found = incidents.incidents_of(session, kind, ref)
    settings = runtime.settings
    return [
        (
            i.id,
            f"{uk_date(i.occurred_at)}: "
            + ", ".join(settings.label("behaviour_types", c) for c in i.behaviour_types)
            + f" ({settings.label('channels', i.channel).lower()})",
        )
        for i in found
    ]


@page(
    bp,
    "/<any(customer, property):kind>/<ref>/propose",
    methods=["GET", "POST"],
    action="flag.propose",
    summary="Propose a flag on a subject from its incidents, with the catalogues' terms",
)
def propose(kind: str, ref: str) -> Any:
    ref = subjects.normalise_ref(kind, ref)
    options = read(lambda session, runtime: _incident_options(session, runtime, kind, ref))
    form = proposal_form(current_runtime().settings, options)
    if form.validate_on_submit():
        proposal = flags.Proposal(
            kind=kind,
            ref=ref,
            terms=FlagTerms(
                level=form.level.data,
                categories=tuple(form.categories.data),
                restrictions=form.restriction_terms(),
                handling=(form.handling.data or "").strip(),
                adjustments=adjustment_lines(form.adjustments.data),
            ),
            reason=form.reason.data,
            control_measures=form.control_measures.data,
            responsible_manager=form.responsible_manager.data,
            reasonable_adjustments=form.reasonable_adjustments.data or "",
            review_months=form.review_months.data,
            incident_ids=tuple(form.incident_ids.data or ()),
            warning_given_on=form.warning_given_on.data,
            no_warning_reason=form.no_warning_reason.data or "",
            protects=tuple(form.protects.data or ()),
            protected_people=form.protected_people.data or "",
        )
        try:
            call(
                "flag.propose",
                lambda ctx: flags.propose(ctx, proposal).id,
            )
        except Invalid as exc:
            show_refusal(form, exc, PROPOSAL_FIELDS, "reason")
        else:
            flash("The flag is proposed. It goes to the case review panel.", "success")
            return redirect(url_for("console.subjects.subject", kind=kind, ref=ref))
    return render(
        "console/propose.html",
        status=422 if form.errors else 200,
        form=form,
        kind=kind,
        ref=ref,
        restrictions=current_runtime().settings.catalogue.restrictions,
        title="Propose a flag",
    )
