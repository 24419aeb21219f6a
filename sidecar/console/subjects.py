"""Finding a customer or property by reference, and the subject's page."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, request, url_for

from sidecar.audit import writer as audit
from sidecar.console.calls import read
from sidecar.console.forms import SubjectSearchForm
from sidecar.console.page import may, page, render
from sidecar.console.reads import subject_record
from sidecar.storage.database import utcnow

bp = Blueprint("subjects", __name__, url_prefix="/console/subjects")


@page(
    bp,
    "",
    action="flag.read",
    summary="Find a customer (CRM reference) or a property (UPRN)",
)
def search() -> Any:
    form = SubjectSearchForm(request.args if "ref" in request.args else None)
    if "ref" in request.args and form.validate():
        target = url_for(".subject", kind=form.kind.data, ref=form.ref.data)
        return redirect(target, code=303)
    status = 422 if form.errors else 200
    return render("console/search.html", status=status, form=form, title="Find a subject")


def _page_number() -> int:
    value = request.args.get("page", "1")
    return int(value) if value.isdigit() and 0 < int(value) < 10_000 else 1


@page(
    bp,
    "/<any(customer, property):kind>/<ref>",
    action="flag.read",
    confidential=True,
    summary="A subject's flags with their state and history, links, letters and incidents "
    "(incident narratives for incident.read, audited as GET /api/v1/incidents is)",
)
def subject(kind: str, ref: str) -> Any:
    with_incidents = may("incident.read")
    record = read(
        lambda session, runtime: subject_record(
            session,
            runtime,
            kind,
            ref,
            with_incidents=with_incidents,
            incident_page=_page_number(),
            now=utcnow(),
        )
    )
    for event in record.audit:
        audit.record(event)
    return render(
        "console/subject.html",
        record=record,
        title=f"{kind.capitalize()} {record.ref}",
    )
