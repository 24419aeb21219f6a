"""The privacy officer's pages: the access log, its verification, and privacy alerts to close."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from sqlalchemy.orm import Session

from sidecar.audit import trail
from sidecar.audit import writer as audit
from sidecar.audit.verify import verify_instance
from sidecar.console.calls import call, read, show_refusal
from sidecar.console.page import page, render
from sidecar.console.privacy_forms import AccessLogForm, CloseAlertForm, VerifyForm
from sidecar.console.queues import page_of
from sidecar.errors import Problem
from sidecar.lookup import alerts
from sidecar.lookup.models import PrivacyAlert
from sidecar.register.rules import Conflict, Invalid, NotFound
from sidecar.register.staff import name_of
from sidecar.runtime import Runtime, current_runtime
from sidecar.storage.crypto import KeyRingError

bp = Blueprint("privacy", __name__, url_prefix="/console")

LOG_PAGE = 50
ALERT_KINDS = {
    "grant_volume": "Many access grants in a day",
    "reason_other": "Access for a reason given as 'other'",
    "outside_team": "Details read outside the reader's teams",
}


def _number(name: str, default: int | None) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() and len(value) < 19 else default


@page(
    bp,
    "/access-log",
    action="audit.read",
    confidential=True,
    summary="The access log filtered by subject, staff member, action, outcome and dates, "
    "oldest first, paged by sequence (audited as GET /api/v1/audit)",
)
def access_log() -> Any:
    form = AccessLogForm(request.args)
    entries: list[dict[str, Any]] | None = None
    next_cursor = None
    after = _number("after", None)
    if form.validate():
        where = form.where()
        limit = min(LOG_PAGE, current_runtime().settings.audit.page_size_max)
        entries, next_cursor = read(
            lambda session, _runtime: trail.page(session.connection(), where, after, limit)
        )
        # Recorded before anything read is shown, as the API's call records it.
        audit.record(
            audit.AuditEvent(
                action="audit.read",
                subject_kind=where.kind,
                subject_ref=where.ref,
                outcome_reason=f"{where.describe()}; {len(entries)} entries",
            )
        )
    filters = {k: v for k, v in request.args.lists() if k not in ("after", "submit")}
    return render(
        "console/access_log.html",
        status=422 if form.errors else 200,
        form=form,
        entries=entries,
        after=after,
        next_url=(
            None if next_cursor is None else url_for(".access_log", **filters, after=next_cursor)
        ),
        first_url=url_for(".access_log", **filters) if after is not None else None,
        title="Access log",
    )


@page(
    bp,
    "/access-log/verify",
    methods=["GET", "POST"],
    action="audit.read",
    summary="Recompute the access log's hash chain and check its signed checkpoints "
    "(audited as GET /api/v1/audit/verify)",
)
def verify_log() -> Any:
    form = VerifyForm()
    verdict = None
    if form.validate_on_submit():
        runtime = current_runtime()
        try:
            verdict = verify_instance(
                runtime.database,
                runtime.settings.audit,
                runtime.audit_keys,
                runtime.settings.instance_dir,
            )
        except KeyRingError as exc:
            raise Problem(503, "keys-unavailable", f"The log cannot be verified: {exc}") from None
        audit.record(audit.AuditEvent(action="audit.verify", outcome_reason=verdict.summary()))
    return render(
        "console/access_log_verify.html",
        status=422 if form.errors else 200,
        form=form,
        verdict=verdict,
        title="Verify the access log",
    )


def _alert_row(session: Session, alert: PrivacyAlert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "raised_at": alert.raised_at,
        "kind": alert.kind,
        "kind_label": ALERT_KINDS.get(alert.kind, alert.kind.replace("_", " ")),
        "user_id": alert.user_id,
        "user_name": name_of(session, alert.user_id),
        "subject": (
            {"kind": alert.subject_kind, "ref": alert.subject_ref} if alert.subject_kind else None
        ),
        "flag_id": alert.flag_id,
        "detail": alert.detail,
        "closed_at": alert.closed_at,
        "closed_by": name_of(session, alert.closed_by),
        "close_note": alert.close_note,
    }


@page(
    bp,
    "/privacy-alerts",
    action="alerts.read",
    summary="Privacy alerts still open, the longest open first (audited as GET /api/v1/alerts)",
)
def alert_queue() -> Any:
    number = _number("page", 1) or 1

    def waiting(session: Session, _runtime: Runtime) -> Any:
        shown = page_of(session, alerts.open_alerts(), number)
        shown.rows = [_alert_row(session, alert) for alert in shown.rows]
        return shown

    shown = read(waiting)
    audit.record(
        audit.AuditEvent(
            action="alerts.read",
            outcome_reason=f"open alerts, page {shown.number}; {len(shown.rows)} shown",
        )
    )
    return render("console/alert_queue.html", queue=shown, title="Privacy alerts")


def _alert(session: Session, _runtime: Runtime, alert_id: str) -> dict[str, Any]:
    alert = session.get(PrivacyAlert, alert_id)
    if alert is None:
        raise NotFound(f"no privacy alert {alert_id}")
    return _alert_row(session, alert)


@page(
    bp,
    "/privacy-alerts/<alert_id>",
    methods=["GET", "POST"],
    action="alerts.read",
    summary="One privacy alert, and closing it with what was found (audited)",
)
def alert(alert_id: str) -> Any:
    form = CloseAlertForm()
    if form.validate_on_submit():
        try:
            call(
                "alerts.read",
                lambda ctx: alerts.close(ctx, alert_id, form.note.data).id,
            )
        except (Invalid, Conflict) as exc:
            show_refusal(form, exc, {"note": "note"}, "note")
        else:
            flash("The alert is closed, with your note.", "success")
            return redirect(url_for(".alert_queue"))
    shown = read(lambda session, runtime: _alert(session, runtime, alert_id))
    audit.record(
        audit.AuditEvent(
            action="alerts.read",
            subject_kind=shown["subject"]["kind"] if shown["subject"] else None,
            subject_ref=shown["subject"]["ref"] if shown["subject"] else None,
            flag_id=shown["flag_id"],
            outcome_reason=f"alert {alert_id}",
        )
    )
    return render(
        "console/alert.html",
        status=422 if form.errors else 200,
        form=form,
        alert=shown,
        title="Privacy alert",
    )
