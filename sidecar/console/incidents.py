"""The staff warning register in the console: recording an incident, and managers' triage."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, redirect, request, url_for

from sidecar.audit import writer as audit
from sidecar.console.calls import call, read, show_refusal
from sidecar.console.forms import IncidentForm, TriageForm, choices, yes
from sidecar.console.page import may, page, render
from sidecar.console.queues import page_of, untriaged
from sidecar.console.reads import incident_for_triage, incident_summary
from sidecar.register import incidents
from sidecar.register.rules import Conflict, Invalid
from sidecar.runtime import current_runtime
from sidecar.storage.database import utcnow

bp = Blueprint("incidents", __name__, url_prefix="/console/incidents")

# Words in the incident service's refusals, and the field each concerns.
INCIDENT_FIELDS = {
    "occurred_at": "occurred_on",
    "channel": "channel",
    "behaviour": "behaviour_types",
    "narrative": "narrative",
    "UPRN": "ref",
    "reference": "ref",
    "names are given": "reporter_name",
    "reporter_kind": "reporter_kind",
}


def _incident_form() -> IncidentForm:
    catalogue = current_runtime().settings.catalogue
    form = IncidentForm()
    form.channel.choices = choices(catalogue.channels)
    form.behaviour_types.choices = choices(catalogue.behaviour_types)
    if request.method == "GET" and request.args.get("kind") in ("customer", "property"):
        form.kind.data = request.args["kind"]
        form.ref.data = request.args.get("ref", "")[:64]
    return form


@page(
    bp,
    "/new",
    methods=["GET", "POST"],
    action="incident.create",
    summary="Record an incident in the staff warning register (any member of staff)",
)
def record() -> Any:
    form = _incident_form()
    if form.validate_on_submit():
        zone = ZoneInfo(current_runtime().settings.lookup.timezone)
        report = incidents.IncidentReport(
            kind=form.kind.data,
            ref=form.ref.data,
            occurred_at=form.occurred_at(zone),
            channel=form.channel.data,
            behaviour_types=tuple(form.behaviour_types.data),
            narrative=form.narrative.data,
            warning_given=yes(form.warning_given.data),
            reporter_kind=form.reporter_kind.data,
            reporter_name=form.reporter_name.data or "",
        )
        try:
            call(
                "incident.create",
                lambda ctx: incidents.report_incident(ctx, report).id,
            )
        except Invalid as exc:
            show_refusal(form, exc, INCIDENT_FIELDS, "narrative")
        else:
            flash(f"Incident recorded for {report.kind} {report.ref}.", "success")
            if may("flag.read"):
                return redirect(
                    url_for("console.subjects.subject", kind=report.kind, ref=report.ref)
                )
            return redirect(url_for("console.home.home"))
    status = 422 if form.errors else 200
    return render("console/incident_new.html", status=status, form=form, title="Record an incident")


def _page_number() -> int:
    value = request.args.get("page", "1")
    return int(value) if value.isdigit() and 0 < int(value) < 10_000 else 1


@page(
    bp,
    "/triage",
    action="incident.triage",
    summary="Incidents awaiting a manager's triage, the longest waiting first",
)
def triage_queue() -> Any:
    number = _page_number()

    def waiting(session: Any, runtime: Any) -> Any:
        shown = page_of(session, untriaged(), number)
        shown.rows = [incident_summary(session, runtime, i) for i in shown.rows]
        return shown

    return render("console/triage_queue.html", queue=read(waiting), title="Incidents to triage")


@page(
    bp,
    "/<incident_id>/triage",
    methods=["GET", "POST"],
    action="incident.triage",
    confidential=True,
    summary="Triage one incident after York's considerations; its narrative is audited as "
    "GET /api/v1/incidents audits it",
)
def triage(incident_id: str) -> Any:
    form = TriageForm()
    if form.validate_on_submit():
        try:
            call(
                "incident.triage",
                lambda ctx: (
                    incidents.triage(
                        ctx,
                        incident_id,
                        form.outcome.data,
                        form.considerations(),
                        form.reference(),
                    ).id
                ),
            )
        except (Invalid, Conflict) as exc:
            reference = {"refer_to_police": "police_reference", "legal_action": "legal_reference"}
            show_refusal(
                form,
                exc,
                {"reference": reference.get(form.outcome.data, "outcome"), "outcome": "outcome"},
                "outcome",
            )
        else:
            flash("Your triage decision is recorded.", "success")
            return redirect(url_for(".triage_queue"))
    shown, events = read(
        lambda session, runtime: incident_for_triage(session, runtime, incident_id, utcnow())
    )
    for event in events:
        audit.record(event)
    status = 422 if form.errors else 200
    return render(
        "console/triage.html", status=status, form=form, incident=shown, title="Triage an incident"
    )
