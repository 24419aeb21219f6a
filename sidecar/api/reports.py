"""Reports: the committee summary for a date range, as JSON or a printable page."""

from __future__ import annotations

from typing import Any, Literal

from flask import render_template
from pydantic import ConfigDict, Field

from sidecar.api.cases import bp
from sidecar.api.endpoint import Input, endpoint
from sidecar.api.inputs import Day
from sidecar.api.responses import html_response, json_response
from sidecar.api.service_call import service_call
from sidecar.audit import writer as audit
from sidecar.register import reports


class SummaryQuery(Input):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    from_: Day | None = Field(None, alias="from", description="first day (default: a year ago)")
    to: Day | None = Field(None, description="last day (default: today)")
    format: Literal["json", "html"] = "json"


@endpoint(
    bp,
    "/reports/summary",
    action="report.read",
    query=SummaryQuery,
    summary="Committee summary for a date range: incidents, flags, decisions, appeals, "
    "reviews (JSON, or printable HTML with format=html)",
    tags=["reports"],
)
def summary_report(query: SummaryQuery) -> Any:
    with service_call("report.read") as ctx:
        body = reports.summary(ctx, query.from_, query.to)
    audit.record(
        audit.AuditEvent(
            action="report.read", outcome_reason=f"summary {body['from']} to {body['to']}"
        )
    )
    if query.format == "html":
        return html_response(render_template("summary.html", report=body))
    return json_response(body)
