"""Subject access requests in the console: the full export, to print or to download."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, Response, redirect, request, url_for

from sidecar.audit import sar
from sidecar.audit import writer as audit
from sidecar.console.calls import read
from sidecar.console.page import page, render
from sidecar.console.privacy_forms import SarForm
from sidecar.register import subjects

bp = Blueprint("subject_access", __name__, url_prefix="/console")

SUBJECT = "/subjects/<any(customer, property):kind>/<ref>"
REQUEST_REF_MAX = 64


def _request_ref() -> str | None:
    """The request's reference from the query: every full export answers one request."""
    value = (request.args.get("request_ref") or "").strip()
    if not value or len(value) > REQUEST_REF_MAX or not value.isprintable():
        return None
    return value


@page(
    bp,
    "/subject-access",
    action="sar.export",
    summary="Start a subject access request export: find the customer or property",
)
def start() -> Any:
    form = SarForm(request.args if "ref" in request.args else None)
    if "ref" in request.args and form.validate():
        target = url_for(
            ".export", kind=form.kind.data, ref=form.ref.data, request_ref=form.request_ref.data
        )
        return redirect(target, code=303)
    return render(
        "console/sar_start.html",
        status=422 if form.errors else 200,
        form=form,
        title="Subject access request",
    )


def _export(kind: str, ref: str, request_ref: str) -> dict[str, Any]:
    """The export as POST /api/v1/subjects/{kind}/{ref}/subject-access-export builds it, audited
    first with the request's reference."""
    ref = subjects.normalise_ref(kind, ref)
    audit.record(
        audit.AuditEvent(
            action="sar.export",
            subject_kind=kind,
            subject_ref=ref,
            purpose_code="subject_access_request",
            purpose_text=request_ref,
        )
    )
    return read(
        lambda session, runtime: sar.build(
            session, sar.SarScope(kind, ref, runtime.settings, runtime.keyring)
        )
    )


@page(
    bp,
    SUBJECT + "/subject-access",
    action="sar.export",
    confidential=True,
    summary="The privacy officer's full subject access export for one request as a printable "
    "page: flags, incidents and every recorded access (audited with the request reference, as "
    "POST .../subject-access-export)",
)
def export(kind: str, ref: str) -> Any:
    request_ref = _request_ref()
    if request_ref is None:
        return redirect(url_for(".start", kind=kind, ref=ref), code=303)
    found = _export(kind, ref, request_ref)
    return render(
        "console/sar_export.html",
        export=found,
        request_ref=request_ref,
        title="Subject access export",
    )


@page(
    bp,
    SUBJECT + "/subject-access.json",
    action="sar.export",
    confidential=True,
    summary="The privacy officer's full subject access export for one request as a JSON "
    "download (audited with the request reference, as POST .../subject-access-export)",
)
def download(kind: str, ref: str) -> Any:
    request_ref = _request_ref()
    if request_ref is None:
        return redirect(url_for(".start", kind=kind, ref=ref), code=303)
    found = {"request_ref": request_ref, **_export(kind, ref, request_ref)}
    safe_ref = re.sub(r"[^A-Za-z0-9._-]", "-", found["subject"]["ref"])
    name = f"subject-access-{kind}-{safe_ref}.json"
    response = Response(
        json.dumps(found, indent=2, ensure_ascii=False), mimetype="application/json"
    )
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response
