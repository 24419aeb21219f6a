"""The committee summary in the console, for a date range chosen in a form."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from sidecar.audit import writer as audit
from sidecar.console.calls import call, show_refusal
from sidecar.console.case_forms import ReportForm
from sidecar.console.page import page, render
from sidecar.register import reports
from sidecar.register.rules import Invalid
from sidecar.storage.database import utcnow

bp = Blueprint("reports", __name__, url_prefix="/console/reports")


@page(
    bp,
    "/summary",
    action="report.read",
    summary="The committee summary for a date range (as GET /api/v1/reports/summary, audited "
    "as it is): incidents, flags, decisions, appeals and reviews, naming no one",
)
def summary() -> Any:
    asked = "start" in request.args or "end" in request.args
    form = ReportForm(request.args if asked else None)
    report = None
    if not asked:
        end = utcnow().date()
        form.start.data, form.end.data = end - reports.DEFAULT_RANGE, end
    if not asked or form.validate():
        try:
            report = call(
                "report.read", lambda ctx: reports.summary(ctx, form.start.data, form.end.data)
            )
        except Invalid as exc:
            show_refusal(form, exc, {"from": "start"}, "end")
    if report is not None:
        audit.record(
            audit.AuditEvent(
                action="report.read",
                outcome_reason=f"summary {report['from']} to {report['to']}",
            )
        )
    return render(
        "console/summary.html",
        status=422 if form.errors else 200,
        form=form,
        report=report,
        title="Committee summary",
    )
