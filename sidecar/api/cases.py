"""Case management: subjects' links, incidents, flags through the panel, notices and letters,
appeals, reviews, withdrawal and the committee summary. Views parse, call a service, shape."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any, Literal

from flask import Blueprint, Flask, Response, current_app, jsonify, render_template
from flask_login import current_user, user_logged_in
from pydantic import ConfigDict, Field
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from sidecar.api.endpoint import Input, endpoint
from sidecar.audit import writer as audit
from sidecar.errors import Problem
from sidecar.lookup.service import may_read_details
from sidecar.policy import access
from sidecar.register import appeals, flags, incidents, notices, records, reports, reviews
from sidecar.register import subjects as subject_service
from sidecar.register.notices import LetterTemplateError
from sidecar.register.rules import FlagTerms, Refusal, Restriction, appeal_deadline, awaiting_roles
from sidecar.register.staff import remember
from sidecar.runtime import current_runtime
from sidecar.storage.database import utcnow

bp = Blueprint("cases", __name__, url_prefix="/api/v1")

STATUS = {"conflict": 409, "forbidden": 403, "invalid": 422, "not_found": 404}
SLUG = {
    "conflict": "conflict",
    "forbidden": "forbidden",
    "invalid": "invalid-request",
    "not_found": "not-found",
}


@contextmanager
def _transaction(action: str, **subject: Any) -> Iterator[Session]:
    """A transaction whose refusals become problems once it has rolled back."""
    try:
        with current_runtime().database.transaction() as session:
            yield session
    except Refusal as exc:
        if exc.kind == "forbidden":
            audit.record_denied(action, exc.message, **subject)
        raise Problem(STATUS[exc.kind], SLUG[exc.kind], exc.message, **exc.facts) from None
    except LetterTemplateError as exc:
        current_app.logger.error("letter template fault: %s", exc)
        raise Problem(500, "letter-template", str(exc)) from None


def _created(body: dict[str, Any]) -> Response:
    response = jsonify(body)
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


def _ok(body: dict[str, Any]) -> Response:
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response


def _remember_sign_in(app: Flask, user: Any, **_extra: Any) -> None:
    """Keep names and roles of people who sign in, for letters, banners and role checks."""
    try:
        with app.extensions["forewarn"].database.transaction() as session:
            remember(session, user.id, user.name, user.roles)
    except SQLAlchemyError as exc:
        # The directory only supplies names; a sign-in must not fail because of it.
        app.logger.warning("staff directory not updated: %s", exc.__class__.__name__)


bp.record_once(lambda setup: user_logged_in.connect(_remember_sign_in, setup.app, weak=False))


# Inputs ------------------------------------------------------------------------------------


class SubjectIn(Input):
    kind: Literal["customer", "property"]
    ref: str = Field(min_length=1, max_length=64)


class RestrictionIn(Input):
    code: str
    note: str = Field("", max_length=200, description="e.g. '10 minutes' for time_limited_calls")
    ends_on: date | None = None


class TermsIn(Input):
    level: str | None = None
    categories: list[str] | None = None
    restrictions: list[str | RestrictionIn] | None = None
    handling: str | None = Field(None, max_length=1000)
    ends_on: date | None = None

    def change(self) -> flags.TermsChange:
        given = self.model_fields_set & {
            "level",
            "categories",
            "restrictions",
            "handling",
            "ends_on",
        }
        return flags.TermsChange(
            level=self.level,
            categories=tuple(self.categories) if self.categories is not None else None,
            restrictions=_restrictions(self.restrictions)
            if self.restrictions is not None
            else None,
            handling=self.handling or "",
            ends_on=self.ends_on,
            changed=frozenset(given),
        )


def _restrictions(items: list[str | RestrictionIn] | None) -> tuple[Restriction, ...]:
    found = []
    for item in items or []:
        if isinstance(item, str):
            found.append(Restriction(item))
        else:
            found.append(Restriction(item.code, item.note, item.ends_on))
    return tuple(found)


class LinkBody(Input):
    property: str = Field(min_length=1, max_length=32, description="UPRN, digits only")


class IncidentBody(Input):
    subject: SubjectIn
    occurred_at: datetime
    channel: str
    behaviour_types: list[str] = Field(min_length=1)
    narrative: str = Field(min_length=1, max_length=20000)
    warning_given: bool


class IncidentQuery(Input):
    kind: Literal["customer", "property"]
    ref: str = Field(min_length=1, max_length=64)


class Considerations(Input):
    channel: str = Field(min_length=1, description="how the behaviour presented across channels")
    circumstances: str = Field(min_length=1, description="the circumstances leading to it")
    known_to_council: bool = Field(description="whether the customer is known to the council")
    support_needs: str = Field(
        min_length=1, description="known disability or other need for support ('none known')"
    )


class TriageBody(Input):
    outcome: Literal["no_further_action", "monitor", "refer_to_case_review"]
    considerations: Considerations


class ProposalBody(Input):
    subject: SubjectIn
    level: str
    categories: list[str] = Field(min_length=1)
    reason: str = Field(min_length=1, max_length=20000)
    control_measures: str = Field(min_length=1, max_length=20000)
    restrictions: list[str | RestrictionIn] = []
    responsible_manager: str = Field(min_length=1, max_length=128)
    review_months: int | None = Field(None, ge=1, le=36)
    incident_ids: list[str] = []
    reasonable_adjustments: str = Field("", max_length=20000)
    handling: str = Field(
        "", max_length=1000, description="recommended staff action, shown on the banner"
    )
    ends_on: date | None = None


class PanelBody(Input):
    role: Literal["customer_support_manager", "senior_manager", "hs_manager"]
    decision: Literal["approve", "reject"]
    severity: str = Field(min_length=1, max_length=2000)
    frequency: str = Field(min_length=1, max_length=2000)
    proportionality: str = Field(min_length=1, max_length=20000)
    reasonable_adjustments: str = Field(min_length=1, max_length=20000)


class NoticeBody(Input):
    method: Literal["letter", "withheld"]
    recipient_name: str | None = Field(None, max_length=300)
    recipient_address: str | None = Field(None, max_length=2000)
    legal_guidance_ref: str | None = Field(None, max_length=256)
    director_permission_by: str | None = Field(None, max_length=128)
    reason: str | None = Field(None, max_length=20000)


class AppealBody(Input):
    received_on: date | None = Field(None, description="when the appeal arrived; default today")
    grounds: str | None = Field(None, max_length=20000)
    handling_manager: str | None = Field(
        None, max_length=128, description="user id of the Senior Manager handling it"
    )
    handling_manager_name: str | None = Field(None, max_length=256)


class AppealDecisionBody(TermsIn):
    outcome: Literal["upheld", "varied", "removed"]
    reasons: str = Field(min_length=1, max_length=20000)


class ReviewBody(TermsIn):
    outcome: Literal["continue", "vary", "remove"]
    notes: str = Field(min_length=1, max_length=20000)


class WithdrawBody(Input):
    reason: str = Field(min_length=1, max_length=2000)


class SummaryQuery(Input):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    from_: date | None = Field(None, alias="from", description="first day (default: a year ago)")
    to: date | None = Field(None, description="last day (default: today)")
    format: Literal["json", "html"] = "json"


# Subjects ----------------------------------------------------------------------------------


@endpoint(
    bp,
    "/subjects/customer/<ref>/links",
    methods=["POST"],
    action="subject.link",
    body=LinkBody,
    summary="Link a customer to a property (UPRN): the property's banner shows their flags",
    tags=["case management"],
    responses={201: "Linked", 409: "Already linked", 422: "Bad reference"},
)
def link_property(ref: str, body: LinkBody) -> Any:
    with _transaction("subject.link", subject_kind="customer", subject_ref=ref) as session:
        prop = subject_service.link(session, current_user, ref, body.property)
        customer = subject_service.require(session, "customer", ref)
        return _created({"customer": customer.ref, "property": prop.ref, "linked": True})


@endpoint(
    bp,
    "/subjects/customer/<ref>/links/<uprn>",
    methods=["DELETE"],
    action="subject.link",
    summary="Unlink a customer from a property",
    tags=["case management"],
    responses={204: "Unlinked", 404: "Not linked"},
)
def unlink_property(ref: str, uprn: str) -> Any:
    with _transaction("subject.link") as session:
        subject_service.unlink(session, current_user, ref, uprn)
    return "", 204


@endpoint(
    bp,
    "/subjects/customer/<ref>/links",
    action="flag.read",
    summary="The properties a customer is linked to",
    tags=["case management"],
)
def list_links(ref: str) -> Any:
    with _transaction("flag.read") as session:
        customer = subject_service.find(session, "customer", ref)
        props = subject_service.linked_properties(session, customer) if customer else []
        return _ok(
            {
                "customer": subject_service.normalise_ref("customer", ref),
                "properties": [p.ref for p in props],
            }
        )


# Incidents ---------------------------------------------------------------------------------


@endpoint(
    bp,
    "/incidents",
    methods=["POST"],
    action="incident.create",
    body=IncidentBody,
    summary="Record an incident in the staff warning register (the reporter is the caller)",
    tags=["case management"],
    responses={201: "Recorded", 422: "Unknown channel or behaviour type, or missing field"},
)
def create_incident(body: IncidentBody) -> Any:
    runtime = current_runtime()
    report = incidents.IncidentReport(
        kind=body.subject.kind,
        ref=body.subject.ref,
        occurred_at=body.occurred_at,
        channel=body.channel,
        behaviour_types=tuple(body.behaviour_types),
        narrative=body.narrative,
        warning_given=body.warning_given,
    )
    with _transaction("incident.create") as session:
        incident = incidents.report_incident(
            session, runtime.settings, runtime.keyring, current_user, report
        )
        return _created({"id": incident.id})


@endpoint(
    bp,
    "/incidents",
    action="incident.read",
    query=IncidentQuery,
    summary="A subject's incidents with narratives (the read is audited first)",
    tags=["case management"],
    confidential=True,
)
def list_incidents(query: IncidentQuery) -> Any:
    runtime = current_runtime()
    with _transaction("incident.read") as session:
        subject, found = incidents.incidents_of(session, query.kind, query.ref)
        ref = subject_service.normalise_ref(query.kind, query.ref)
        body = {
            "subject": {"kind": query.kind, "ref": ref},
            "incidents": [
                incidents.incident_json(runtime.settings, runtime.keyring, i, subject)
                for i in found
            ]
            if subject
            else [],
        }
    audit.record(
        audit.AuditEvent(
            action="incident.read",
            subject_kind=query.kind,
            subject_ref=ref,
            outcome_reason=f"{len(body['incidents'])} incidents",
        )
    )
    return _ok(body)


@endpoint(
    bp,
    "/incidents/<incident_id>/triage",
    methods=["POST"],
    action="incident.triage",
    body=TriageBody,
    summary="A manager's triage after York's considerations: no further action, monitor, "
    "or refer to case review",
    tags=["case management"],
    responses={200: "Triaged", 409: "Already triaged"},
)
def triage_incident(incident_id: str, body: TriageBody) -> Any:
    runtime = current_runtime()
    with _transaction("incident.triage") as session:
        incident = incidents.triage(
            session,
            runtime.keyring,
            current_user,
            incident_id,
            body.outcome,
            body.considerations.model_dump(),
        )
        return _ok({"id": incident.id, "triage": incident.triage})


# Flags -------------------------------------------------------------------------------------


@endpoint(
    bp,
    "/flags",
    methods=["POST"],
    action="flag.propose",
    body=ProposalBody,
    summary="Propose a flag; it goes to the case review panel",
    tags=["case management"],
    responses={201: "Proposed", 422: "Unknown level, category or restriction; missing field"},
)
def propose_flag(body: ProposalBody) -> Any:
    runtime = current_runtime()
    proposal = flags.Proposal(
        kind=body.subject.kind,
        ref=body.subject.ref,
        terms=FlagTerms(
            level=body.level,
            categories=tuple(body.categories),
            restrictions=_restrictions(body.restrictions),
            handling=body.handling,
            ends_on=body.ends_on,
        ),
        reason=body.reason,
        control_measures=body.control_measures,
        responsible_manager=body.responsible_manager,
        reasonable_adjustments=body.reasonable_adjustments,
        review_months=body.review_months,
        incident_ids=tuple(body.incident_ids),
    )
    with _transaction("flag.propose") as session:
        flag = flags.propose(session, runtime.settings, runtime.keyring, current_user, proposal)
        return _created({"id": flag.id, "state": flag.state})


@endpoint(
    bp,
    "/flags/<flag_id>",
    action="flag.read",
    summary="A flag's state, terms, decisions and history; confidential fields only for "
    "users with a relationship to the case",
    tags=["case management"],
    confidential=True,
)
def read_flag(flag_id: str) -> Any:
    runtime = current_runtime()
    now = utcnow()
    with _transaction("flag.read") as session:
        flag = flags.load(session, flag_id)
        decision = may_read_details(session, flag, now)
        related = decision.allowed
        body = records.flag_json(
            session, runtime.settings, runtime.keyring, flag, confidential=related, now=now
        )
    audit.record(
        audit.AuditEvent(
            action="flag.read",
            flag_id=flag_id,
            subject_kind=body["subject"]["kind"],
            subject_ref=body["subject"]["ref"],
            outcome_reason=f"record with confidential details ({decision.basis})"
            if related
            else "record without confidential details",
        )
    )
    return _ok(body)


@endpoint(
    bp,
    "/flags/<flag_id>/panel-decisions",
    methods=["POST"],
    action="panel.decide",
    body=PanelBody,
    summary="A case review panel member's decision with their assessment; active after three "
    "distinct approvals, rejected on any rejection",
    tags=["case management"],
    responses={
        201: "Recorded",
        403: "You do not hold the role",
        409: "Not proposed, or you or the role already decided",
    },
)
def panel_decision(flag_id: str, body: PanelBody) -> Any:
    runtime = current_runtime()
    assessment = flags.Assessment(
        severity=body.severity,
        frequency=body.frequency,
        proportionality=body.proportionality,
        reasonable_adjustments=body.reasonable_adjustments,
    )
    with _transaction("panel.decide", flag_id=flag_id) as session:
        flag = flags.decide_panel(
            session, runtime.keyring, current_user, flag_id, body.role, body.decision, assessment
        )
        votes = flags.votes_of(session, flag)
        return _created(
            {
                "id": flag.id,
                "state": flag.state,
                "awaiting": awaiting_roles(votes) if flag.state == "proposed" else [],
                "review_due": flag.review_due.isoformat() if flag.review_due else None,
            }
        )


@endpoint(
    bp,
    "/flags/<flag_id>/notice",
    methods=["POST"],
    action="notice.issue",
    body=NoticeBody,
    summary="Send the decision letter, or record the exception (legal guidance, Service "
    "Director's permission, reason) that withholds it",
    tags=["case management"],
    responses={201: "Notice recorded", 409: "Not active, or already notified", 422: "Missing"},
)
def issue_notice(flag_id: str, body: NoticeBody) -> Any:
    runtime = current_runtime()
    with _transaction("notice.issue", flag_id=flag_id) as session:
        notice, letter = notices.issue_notice(
            session,
            runtime.settings,
            runtime.keyring,
            current_user,
            flag_id,
            body.method,
            recipient_name=body.recipient_name,
            recipient_address=body.recipient_address,
            legal_guidance_ref=body.legal_guidance_ref,
            director_permission_by=body.director_permission_by,
            reason=body.reason,
        )
        return _created(
            {
                "flag_id": flag_id,
                "method": notice.method,
                "issued_at": notice.issued_at.isoformat(),
                "letter": letter.n if letter else None,
                "appeal_window_closes": appeal_deadline(
                    notice.issued_at.date(), runtime.settings.policy.appeal_window_days
                ).isoformat(),
            }
        )


def _may_read_letters(session: Session, flag: flags.Flag) -> bool:
    """Letters carry the reason: those who send letters, or who may read the details."""
    if access.decide(current_user, "notice.issue").allowed:
        return True
    return may_read_details(session, flag, utcnow()).allowed


@endpoint(
    bp,
    "/flags/<flag_id>/letters",
    action="flag.read",
    summary="The letters sent about a flag (numbers, kinds, dates, signatories)",
    tags=["case management"],
)
def list_letters(flag_id: str) -> Any:
    with _transaction("flag.read", flag_id=flag_id) as session:
        flag = flags.load(session, flag_id)
        return _ok(
            {
                "flag_id": flag.id,
                "letters": [notices.letter_json(i) for i in notices.letters_of(session, flag)],
            }
        )


@endpoint(
    bp,
    "/flags/<flag_id>/letters/<int:n>",
    action="flag.read",
    summary="One letter as rendered (HTML, printable); audited before it is returned",
    tags=["case management"],
    confidential=True,
    responses={200: "text/html", 403: "Neither a letter sender nor involved", 410: "Purged"},
)
def read_letter(flag_id: str, n: int) -> Any:
    runtime = current_runtime()
    with _transaction("letter.read", flag_id=flag_id) as session:
        flag = flags.load(session, flag_id)
        allowed = _may_read_letters(session, flag)
        kind, ref = flag.subject.kind, flag.subject.ref
        item = notices.letter(session, flag, n) if allowed else None
        body = item.unseal(runtime.keyring, "body") if item is not None else None
    if not allowed:
        audit.record_denied(
            "letter.read",
            "neither a letter sender nor involved in the case",
            flag_id=flag_id,
            subject_kind=kind,
            subject_ref=ref,
        )
        raise Problem(403, "forbidden", "letters are open to letter senders and those involved")
    if body is None:
        raise Problem(410, "purged", f"letter {n} was purged after the retention period")
    audit.record(
        audit.AuditEvent(
            action="letter.read",
            flag_id=flag_id,
            subject_kind=kind,
            subject_ref=ref,
            outcome_reason=f"letter {n}",
        )
    )
    response = Response(body, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


@endpoint(
    bp,
    "/flags/<flag_id>/appeals",
    methods=["POST"],
    action="appeal.lodge",
    body=AppealBody,
    summary="Record an appeal received in writing; 409 with the closing date outside the window",
    tags=["case management"],
    responses={201: "Pending", 409: "Window closed, flag not active, or an appeal is pending"},
)
def lodge_appeal(flag_id: str, body: AppealBody) -> Any:
    runtime = current_runtime()
    with _transaction("appeal.lodge", flag_id=flag_id) as session:
        appeal = appeals.lodge(
            session,
            runtime.settings,
            runtime.keyring,
            current_user,
            flag_id,
            received_on=body.received_on,
            grounds=body.grounds,
            handling_manager=body.handling_manager,
            handling_manager_name=body.handling_manager_name,
        )
        return _created(
            {
                "id": appeal.id,
                "flag_id": flag_id,
                "state": "pending",
                "received_on": appeal.received_on.isoformat(),
                "handling_manager": {
                    "id": appeal.handling_manager,
                    "name": appeal.handling_manager_name,
                },
            }
        )


@endpoint(
    bp,
    "/flags/<flag_id>/appeals/<appeal_id>/decision",
    methods=["POST"],
    action="appeal.decide",
    body=AppealDecisionBody,
    summary="A Service Director's decision on an appeal (upheld, varied, removed); refused "
    "with 403 to anyone involved in the case",
    tags=["case management"],
    responses={200: "Decided; outcome letter written", 403: "Involved in the case"},
)
def decide_appeal(flag_id: str, appeal_id: str, body: AppealDecisionBody) -> Any:
    runtime = current_runtime()
    with _transaction("appeal.decide", flag_id=flag_id) as session:
        appeal, letter = appeals.decide(
            session,
            runtime.settings,
            runtime.keyring,
            current_user,
            flag_id,
            appeal_id,
            body.outcome,
            body.reasons,
            body.change(),
        )
        flag = flags.load(session, flag_id)
        return _ok(
            {
                "appeal_id": appeal.id,
                "outcome": appeal.outcome,
                "flag_state": flag.state,
                "letter": letter.n,
            }
        )


@endpoint(
    bp,
    "/flags/<flag_id>/reviews",
    methods=["POST"],
    action="review.record",
    body=ReviewBody,
    summary="Record a review: continue (sets the next review date), vary or remove",
    tags=["case management"],
    responses={201: "Recorded", 409: "Flag not active"},
)
def record_review(flag_id: str, body: ReviewBody) -> Any:
    runtime = current_runtime()
    with _transaction("review.record", flag_id=flag_id) as session:
        review, letter = reviews.record_review(
            session,
            runtime.settings,
            runtime.keyring,
            current_user,
            flag_id,
            body.outcome,
            body.notes,
            body.change(),
        )
        flag = flags.load(session, flag_id)
        return _created(
            {
                "id": review.id,
                "outcome": review.outcome,
                "flag_state": flag.state,
                "next_review_due": review.next_review_due.isoformat()
                if review.next_review_due
                else None,
                "letter": letter.n if letter else None,
            }
        )


@endpoint(
    bp,
    "/reviews/due",
    action="flag.read",
    summary="Active flags whose review is due soon or overdue, and flags still awaiting notice",
    tags=["case management"],
)
def reviews_due() -> Any:
    runtime = current_runtime()
    now = utcnow()
    with _transaction("flag.read") as session:
        return _ok(
            {
                "as_of": now.date().isoformat(),
                "due_within_days": runtime.settings.lifecycle.review_due_soon_days,
                "flags": reviews.due(session, runtime.settings, now.date()),
                "notices_overdue": reviews.notices_overdue(session, runtime.settings, now),
            }
        )


@endpoint(
    bp,
    "/flags/<flag_id>/withdraw",
    methods=["POST"],
    action="flag.withdraw",
    body=WithdrawBody,
    summary="Withdraw a proposed or active flag, saying why",
    tags=["case management"],
    responses={200: "Withdrawn", 409: "The flag has ended"},
)
def withdraw_flag(flag_id: str, body: WithdrawBody) -> Any:
    with _transaction("flag.withdraw", flag_id=flag_id) as session:
        flag = flags.withdraw(session, current_user, flag_id, body.reason)
        return _ok({"id": flag.id, "state": flag.state})


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
    runtime = current_runtime()
    now = utcnow()
    end = query.to or now.date()
    start = query.from_ or end - timedelta(days=365)
    if start > end:
        raise Problem(422, "invalid-request", f"from {start} is after to {end}")
    with _transaction("report.read") as session:
        body = reports.summary(session, runtime.settings, start, end, now)
    audit.record(audit.AuditEvent(action="report.read", outcome_reason=f"summary {start} to {end}"))
    if query.format == "html":
        response = Response(render_template("summary.html", report=body), mimetype="text/html")
        response.headers["Cache-Control"] = "no-store"
        return response
    return _ok(body)
