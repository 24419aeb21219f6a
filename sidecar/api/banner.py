"""Lookup endpoints: the banner, access grants, flag details and privacy alerts."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from flask import Blueprint, current_app, jsonify
from flask_login import current_user
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from sidecar.api.endpoint import Input, endpoint
from sidecar.api.inputs import Day
from sidecar.api.responses import json_response
from sidecar.audit import writer as audit
from sidecar.errors import Problem
from sidecar.lookup import alerts as privacy_alerts
from sidecar.lookup import cache as status_cache
from sidecar.lookup import service as lookup
from sidecar.lookup.models import AccessGrant, PrivacyAlert
from sidecar.notify import events as notifications
from sidecar.policy import access
from sidecar.runtime import current_runtime
from sidecar.storage.database import utcnow

bp = Blueprint("lookup", __name__, url_prefix="/api/v1")
bp.record_once(lambda setup: status_cache.install(setup.app))

REASON_TEXT_MAX = 2000


def _unrecorded() -> audit.AuditUnavailable:
    """The store failed around an audited access: refuse it whole, as the audit writer does."""
    return audit.AuditUnavailable(
        "the access could not be recorded, so nothing was disclosed; try again later"
    )


@endpoint(
    bp,
    "/subjects/<kind>/<ref>/banner",
    action="banner.read",
    summary="A customer or property banner: level, categories, handling; every call audited",
    tags=["lookup"],
    responses={200: "The subject's status (an unknown subject has none)", 503: "Not recorded"},
)
def banner(kind: str, ref: str) -> Any:
    ref = lookup.check_subject(kind, ref)
    runtime = current_runtime()
    status = lookup.viewed_banner(
        runtime.database, status_cache.of(current_app), runtime.settings, kind, ref
    )
    return json_response(
        {
            "subject": {"kind": kind, "ref": ref},
            **status,
            "can_request_details": access.decide(current_user, access.DETAILS_PERMISSION).allowed,
        }
    )


@endpoint(
    bp,
    "/access-reasons",
    action="details.request",
    summary="The reason codes and rules for asking to see a flag's details",
    tags=["lookup"],
)
def access_reasons() -> Any:
    settings = current_runtime().settings
    return jsonify(
        reason_codes=[
            {"code": code, "label": label}
            for code, label in settings.catalogue.reason_codes.items()
        ],
        reason_text_min_length=settings.policy.grant_reason_min_length,
        grant_hours=settings.policy.grant_hours,
        visit_days_ahead=settings.lookup.visit_days_ahead,
    )


class GrantBody(Input):
    reason_code: str
    reason_text: str = Field(
        max_length=REASON_TEXT_MAX,
        description="why the details are needed: policy.grant_reason_min_length characters at "
        "least (15 by default)",
    )
    visit_date: Day | None = None


def _check_grant(body: GrantBody, now: datetime) -> None:
    settings = current_runtime().settings
    errors = []
    if body.reason_code not in settings.catalogue.reason_codes:
        codes = ", ".join(settings.catalogue.reason_codes)
        errors.append({"field": "reason_code", "message": f"must be one of {codes}"})
    minimum = settings.policy.grant_reason_min_length
    if len(body.reason_text) < minimum:
        errors.append({"field": "reason_text", "message": f"must be at least {minimum} characters"})
    if errors:
        detail = "; ".join(f"body field '{e['field']}': {e['message']}" for e in errors)
        raise Problem(422, "invalid-request", detail, errors=errors)
    lookup.check_visit_date(settings, now, body.visit_date)


@endpoint(
    bp,
    "/subjects/<kind>/<ref>/access-grants",
    methods=["POST"],
    action="details.request",
    body=GrantBody,
    summary="Record a business need to read this subject's flag details, for a limited time",
    tags=["lookup"],
    responses={201: "Granted to this user for this subject", 403: "Refused", 422: "Invalid"},
)
def create_grant(kind: str, ref: str, body: GrantBody) -> Any:
    ref = lookup.check_subject(kind, ref)
    now = utcnow()
    _check_grant(body, now)
    runtime = current_runtime()
    grant = AccessGrant(
        user_id=current_user.id,
        subject_kind=kind,
        subject_ref=ref,
        reason_code=body.reason_code,
        reason_text=body.reason_text,
        visit_date=body.visit_date,
        created_at=now,
        expires_at=lookup.grant_expiry(runtime.settings, now, body.visit_date),
    )
    try:
        with runtime.database.transaction() as session:
            session.add(grant)
            session.flush()
            # The grant, its audit entry and any alert it raises stand or fall together.
            audit.append(
                session,
                audit.AuditEvent(
                    action="access_grant.create",
                    subject_kind=kind,
                    subject_ref=ref,
                    purpose_code=body.reason_code,
                    purpose_text=body.reason_text,
                    outcome_reason=f"grant {grant.id} until {grant.expires_at.isoformat()}",
                ),
            )
            privacy_alerts.after_grant(session, runtime.settings, grant, now)
    except SQLAlchemyError:
        raise _unrecorded() from None
    return json_response(
        {"grant_id": grant.id, "expires_at": grant.expires_at.isoformat()}, status=201
    )


@endpoint(
    bp,
    "/flags/<flag_id>/details",
    action="details.request",
    confidential=True,
    summary="A flag's confidential details, for a user with a live grant or a relationship",
    tags=["lookup"],
    responses={
        200: "Reason, control measures, restrictions, manager, incidents, decisions",
        403: "No live grant for the subject and no relationship to the flag",
        404: "No such flag",
        503: "The access could not be recorded, so nothing was disclosed",
    },
)
def flag_details(flag_id: str) -> Any:
    runtime = current_runtime()
    with runtime.database.transaction() as session:
        case = lookup.read_case(session, flag_id, current_user.id, utcnow())
    if case is None:
        audit.record_denied(access.DETAILS_READ, "no such flag", flag_id=flag_id[:32])
        raise Problem(404, "not-found", f"no flag {flag_id} with details to show")
    flag = case.flag
    subject = {
        "subject_kind": flag.subject.kind,
        "subject_ref": flag.subject.ref,
        "flag_id": flag_id,
    }
    decision = access.decide(current_user, access.DETAILS_READ, case.resource())
    if not decision.allowed:
        audit.record_denied(access.DETAILS_READ, decision.basis, **subject)
        raise Problem(403, "forbidden", f"not permitted: {decision.basis}")
    purpose = lookup.access_purpose(decision, case.grants)
    # Durably committed before a single confidential field is decrypted or returned.
    audit.record(
        audit.AuditEvent(
            action=access.DETAILS_READ, outcome_reason=decision.basis, **subject, **purpose
        )
    )
    alert = privacy_alerts.outside_team(runtime.settings, current_user.id, flag)
    if alert is not None or runtime.settings.notifications.enabled:
        try:
            with runtime.database.transaction() as session:
                if alert is not None:
                    session.add(alert)
                # The responsible manager hears who opened it, when and why (a digest).
                notifications.details_opened(
                    session, runtime.settings, flag, current_user, purpose["purpose_code"]
                )
                notifications.alerts_raised(session, runtime.settings, [alert] if alert else [])
        except SQLAlchemyError:
            raise _unrecorded() from None
    return json_response(lookup.details(runtime.settings, runtime.keyring, case))


class AlertsQuery(Input):
    kind: str | None = Field(None, json_schema_extra={"enum": list(privacy_alerts.KINDS)})
    user: str | None = None
    since: Day | None = None
    limit: int = Field(100, ge=1, le=500)


@endpoint(
    bp,
    "/alerts",
    action="alerts.read",
    query=AlertsQuery,
    summary="Privacy alerts for auditors, newest first",
    tags=["audit"],
)
def alerts(query: AlertsQuery) -> Any:
    runtime = current_runtime()
    if query.kind is not None and query.kind not in privacy_alerts.KINDS:
        kinds = ", ".join(privacy_alerts.KINDS)
        raise Problem(
            422,
            "invalid-request",
            f"query field 'kind': must be one of {kinds}",
            errors=[{"field": "kind", "message": f"must be one of {kinds}"}],
        )
    audit.record(audit.AuditEvent(action="alerts.read"))
    statement = select(PrivacyAlert).order_by(PrivacyAlert.raised_at.desc()).limit(query.limit)
    if query.kind is not None:
        statement = statement.where(PrivacyAlert.kind == query.kind)
    if query.user is not None:
        statement = statement.where(PrivacyAlert.user_id == query.user)
    if query.since is not None:
        statement = statement.where(
            PrivacyAlert.raised_at >= datetime.combine(query.since, time.min, tzinfo=UTC)
        )
    with runtime.database.transaction() as session:
        rows = session.scalars(statement).all()
    return json_response(
        {
            "alerts": [
                {
                    "id": row.id,
                    "raised_at": row.raised_at.isoformat(),
                    "kind": row.kind,
                    "user_id": row.user_id,
                    "subject": (
                        {"kind": row.subject_kind, "ref": row.subject_ref}
                        if row.subject_kind
                        else None
                    ),
                    "flag_id": row.flag_id,
                    "detail": row.detail,
                    "closed": (
                        {
                            "at": row.closed_at.isoformat(),
                            "by": row.closed_by,
                            "note": row.close_note,
                        }
                        if row.closed_at
                        else None
                    ),
                }
                for row in rows
            ]
        }
    )
