"""Every route declares its permission, and the authorization matrix: route x role -> status.

The matrix is the specification of who may call what. A route added without a row here
fails `test_matrix_has_a_row_for_every_route` until someone writes down, for that route,
what each role must get: that review is the point of the test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

import pytest
from flask import Flask

from sidecar.api.endpoint import endpoints
from sidecar.identity.launch import mint_launch_token
from sidecar.settings import PERMISSIONS, ROLES, Settings
from sidecar.storage.keys import KeyFiles
from tests.connectors.fakes.webhook import FakeWebhookReceiver
from tests.lifecycle.conftest import ASSESSMENT, PROPOSAL

# Routes that need no sign-in: health, sign-in itself, the API description.
PUBLIC_ROUTES = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/auth/launch"),
    ("POST", "/auth/logout"),
    ("GET", "/auth/session"),
    ("POST", "/auth/demo"),
    ("GET", "/auth/login"),
    ("GET", "/auth/callback"),
    ("POST", "/auth/salesforce-canvas"),
    ("GET", "/widget/<name>"),
    ("GET", "/embed"),
    ("POST", "/embed"),
    ("GET", "/demo/crm"),
    ("POST", "/demo/launch-token"),
    ("GET", "/console/sign-in"),
    ("POST", "/console/sign-in/demo"),
    ("POST", "/console/sign-out"),
    ("GET", "/console/static/<path:name>"),
    ("GET", "/assets/<path:name>"),
    ("GET", "/fhir/r4/metadata"),
}

# Who holds what: written out here, independent of config, so a config change that widens
# access fails `test_config_grants_exactly_the_matrix_permissions` and is looked at.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    # Contact-centre agents record what happens on their calls, as every member of staff may.
    "agent": frozenset({"banner.read", "incident.create"}),
    "visiting_officer": frozenset({"banner.read", "details.request", "incident.create"}),
    "case_officer": frozenset(
        {
            "banner.read",
            "details.request",
            "incident.create",
            "incident.read",
            "flag.read",
            "flag.propose",
            "notice.issue",
            "appeal.lodge",
            "report.read",
            "subject.link",
            "decision.read",
        }
    ),
    "customer_support_manager": frozenset(
        {
            "banner.read",
            "details.request",
            "incident.create",
            "incident.read",
            "incident.triage",
            "flag.read",
            "flag.propose",
            "flag.withdraw",
            "panel.decide",
            "notice.issue",
            "appeal.lodge",
            "appeal.assign",
            "review.assign",
            "review.record",
            "report.read",
            "subject.link",
            "decision.read",
            "decision.record",
        }
    ),
    "senior_manager": frozenset(
        {
            "banner.read",
            "details.request",
            "incident.read",
            "incident.triage",
            "flag.read",
            "panel.decide",
            "review.record",
            "report.read",
            "decision.read",
        }
    ),
    "hs_manager": frozenset(
        {
            "banner.read",
            "details.request",
            "incident.read",
            "flag.read",
            "panel.decide",
            "report.read",
        }
    ),
    "service_director": frozenset(
        {
            "banner.read",
            "details.request",
            "flag.read",
            "appeal.decide",
            "notice.permit_withheld",
            "report.read",
            "decision.read",
        }
    ),
    # The Head of Legal records the guidance that lets a decision letter be withheld.
    "legal": frozenset(
        {"banner.read", "flag.read", "notice.record_guidance", "report.read", "decision.read"}
    ),
    "auditor": frozenset({"banner.read", "audit.read", "alerts.read", "report.read"}),
    # The privacy officer searches the access log, verifies the chain and closes privacy
    # alerts; the person's own data goes out only in a subject access export, audited per request.
    "privacy_officer": frozenset({"banner.read", "audit.read", "alerts.read", "sar.export"}),
    # Council IT: sync health, and ending a leaver's sessions.
    "admin": frozenset({"banner.read", "sync.manage", "sessions.manage"}),
}

ANONYMOUS = "(not signed in)"


@dataclass(frozen=True)
class Case:
    """One way of calling a route, and the status each caller must get.

    `allowed` is the status for a role holding `action` (for a public route: for everyone);
    roles without it get 403 and anonymous callers 401, unless `anonymous` says otherwise.
    `prepare(app, role)` may create data through the API first and returns the path to
    call (e.g. a flag, and for "with grant" cases an access grant for that role's user).
    """

    path: str
    allowed: int
    action: str | None = None
    label: str = ""
    anonymous: int | None = None
    json: dict[str, Any] | None = None
    form: dict[str, str] | None = None
    denied_roles: frozenset[str] = field(default_factory=frozenset)
    prepare: Callable[[Flask, str], str] | None = None

    def expected(self, role: str) -> int:
        if role == ANONYMOUS:
            if self.anonymous is not None:
                return self.anonymous
            return self.allowed if self.action is None else 401
        if role in self.denied_roles:
            return 403
        if self.action is None or self.action in ROLE_PERMISSIONS[role]:
            return self.allowed
        return 403


def matrix_user(role: str) -> str:
    """The user id each role signs in as when the matrix calls a route."""
    return f"u.m.{role}"


# Preparations --------------------------------------------------------------------------------
# Data a route needs is made through the API by staff outside the matrix (u.setup.*), so the
# matrix's own users are uninvolved in every case unless a row says otherwise.

SETUP_STAFF = {
    "officer": ("case_officer", "u.setup.officer"),
    "csm": ("customer_support_manager", "u.setup.csm"),
    "sm": ("senior_manager", "u.setup.sm"),
    "hs": ("hs_manager", "u.setup.hs"),
    "director": ("service_director", "u.setup.director"),
    "legal": ("legal", "u.setup.legal"),
}
SETUP_RESPONSIBLE_MANAGER = "u.setup.resp"

_bearers: WeakKeyDictionary[Flask, dict[str, dict[str, str]]] = WeakKeyDictionary()


def _bearer(app: Flask, who: str) -> dict[str, str]:
    """Sign a set-up member of staff in through /auth/launch once per app."""
    signed_in = _bearers.setdefault(app, {})
    if who not in signed_in:
        role, user = SETUP_STAFF[who]
        settings = app.extensions["forewarn"].settings
        key = KeyFiles.of(settings.instance_dir).launch_demo_key.read_bytes()
        token = mint_launch_token(
            key, settings.deployment.public_url, user, user.title(), [role], 300
        )
        reply = app.test_client().post("/auth/launch", json={"token": token})
        assert reply.status_code == 200, reply.get_json()
        signed_in[who] = {"Authorization": f"Bearer {reply.get_json()['access_token']}"}
    return signed_in[who]


def _call(app: Flask, who: str, method: str, path: str, body: dict[str, Any], status: int) -> Any:
    reply = app.test_client().open(path, method=method, json=body, headers=_bearer(app, who))
    assert reply.status_code == status, (path, reply.get_json())
    return reply.get_json()


def _proposed(app: Flask, responsible_manager: str = SETUP_RESPONSIBLE_MANAGER) -> str:
    proposal = PROPOSAL | {"responsible_manager": responsible_manager}
    return _call(app, "officer", "POST", "/api/v1/flags", proposal, 201)["id"]


def _active(app: Flask, responsible_manager: str = SETUP_RESPONSIBLE_MANAGER) -> str:
    flag_id = _proposed(app, responsible_manager)
    for who in ("csm", "sm", "hs"):
        decision = {"role": SETUP_STAFF[who][0], "decision": "approve", **ASSESSMENT}
        _call(app, who, "POST", f"/api/v1/flags/{flag_id}/panel-decisions", decision, 201)
    return flag_id


def _notified(app: Flask, responsible_manager: str = SETUP_RESPONSIBLE_MANAGER) -> str:
    flag_id = _active(app, responsible_manager)
    _call(app, "csm", "POST", f"/api/v1/flags/{flag_id}/notice", LETTER_NOTICE, 201)
    return flag_id


def _incident(app: Flask) -> str:
    return _call(app, "officer", "POST", "/api/v1/incidents", INCIDENT, 201)["id"]


def on_flag(
    stage: Callable[..., str], suffix: str = "", *, involve: bool = False
) -> Callable[[Flask, str], str]:
    """A fresh flag at `stage` for each caller; `involve` names the caller responsible manager."""

    def prepare(app: Flask, role: str) -> str:
        if involve:
            return f"/api/v1/flags/{stage(app, matrix_user(role))}{suffix}"
        return f"/api/v1/flags/{stage(app)}{suffix}"

    return prepare


def on_pending_appeal(
    *, involve: bool = False, suffix: str = "/decision"
) -> Callable[[Flask, str], str]:
    """A fresh notified flag with an appeal lodged against it, for each caller."""

    def prepare(app: Flask, role: str) -> str:
        flag_id = _notified(app, matrix_user(role)) if involve else _notified(app)
        appeal = _call(app, "officer", "POST", f"/api/v1/flags/{flag_id}/appeals", APPEAL, 201)
        return f"/api/v1/flags/{flag_id}/appeals/{appeal['id']}{suffix}"

    return prepare


REVIEWERS = frozenset(r for r, held in ROLE_PERMISSIONS.items() if "review.record" in held)


def on_assigned_review(app: Flask, role: str) -> str:
    """A fresh notified flag whose review assignment names the caller, if they may review."""
    flag_id = _notified(app)
    if role in REVIEWERS:
        assignment = {"reviewers": [matrix_user(role)]}
        _call(app, "csm", "POST", f"/api/v1/flags/{flag_id}/review-assignments", assignment, 201)
    return f"/api/v1/flags/{flag_id}/reviews"


def on_console_assigned_review(app: Flask, role: str) -> str:
    """The console's review page of a flag whose review assignment names the caller."""
    path = on_assigned_review(app, role).removesuffix("/reviews")
    return path.replace("/api/v1/flags/", "/console/flags/") + "/review"


def on_withheld_permission_known(app: Flask, role: str) -> str:
    """An active flag, and the permitting director signed in once so Forewarn knows the role."""
    _bearer(app, "director")
    return f"/api/v1/flags/{_active(app)}/notice"


def on_guidance(app: Flask, role: str) -> str:
    """An active flag whose letter the Head of Legal advises withholding, through the API."""
    flag_id = _active(app)
    _call(app, "legal", "POST", f"/api/v1/flags/{flag_id}/notice/guidance", CONSOLE_GUIDANCE, 201)
    return f"/api/v1/flags/{flag_id}/notice/permission"


def on_guidance_refusal(app: Flask, role: str) -> str:
    """The API's refusal of permission, on guidance the Head of Legal recorded."""
    return on_guidance(app, role).removesuffix("/permission") + "/refusal"


def on_new_incident(app: Flask, role: str) -> str:
    return f"/api/v1/incidents/{_incident(app)}/triage"


def after(make: Callable[[Flask], str], path: str) -> Callable[[Flask, str], str]:
    """Make data first (an incident, a flag), then call the fixed `path`."""

    def prepare(app: Flask, role: str) -> str:
        make(app)
        return path

    return prepare


def _customer_of(role: str) -> str:
    """A customer reference of the caller's own, so each allowed link is a new one."""
    return "CRM-" + re.sub(r"[^A-Za-z0-9]+", "-", role).strip("-")


def on_unlinked_customer(app: Flask, role: str) -> str:
    return f"/api/v1/subjects/customer/{_customer_of(role)}/links"


def on_linked_customer(app: Flask, role: str) -> str:
    customer = _customer_of(role)
    _call(app, "csm", "POST", f"/api/v1/subjects/customer/{customer}/links", LINK, 201)
    return f"/api/v1/subjects/customer/{customer}/links/{LINK['property']}"


def _decision(app: Flask) -> str:
    """A decision in CRM-2001's log, decided by the set-up Customer Support Manager."""
    _bearer(app, "csm")
    path = "/api/v1/subjects/customer/CRM-2001/decisions"
    return _call(app, "csm", "POST", path, DECISION, 201)["id"]


def on_decision(app: Flask, role: str) -> str:
    return f"/api/v1/decisions/{_decision(app)}/lift"


def on_decision_log(app: Flask, role: str) -> str:
    _bearer(app, "csm")
    return "/api/v1/subjects/customer/CRM-2001/decisions"


LINK = {"property": "100023336956"}
DECISION = {
    "kind": "no_further_complaints",
    "matter": "The 2024 complaint about the bin collection",
    "reason": "Investigated and closed at every stage; no new evidence since.",
    "decided_by": "u.setup.csm",
    "decided_on": "2026-01-05",
}
LIFT = {
    "reason": "A new matter was raised.",
    "decided_by": "u.setup.csm",
    "lifted_on": "2026-02-01",
}
WEBHOOK_CONNECTOR = "crm_webhook"
INCIDENT = {
    "subject": {"kind": "customer", "ref": "CRM-2001"},
    "occurred_at": "2025-03-01T10:30:00Z",
    "channel": "in_person",
    "behaviour_types": ["threats"],
    "narrative": "Threatened the receptionist when told the office was closing.",
    "warning_given": True,
}
TRIAGE = {
    "outcome": "refer_to_case_review",
    "considerations": {
        "channel": "in person at reception",
        "circumstances": "told the office was closing",
        "known_to_council": True,
        "support_needs": "none known",
    },
}
LETTER_NOTICE = {
    "method": "letter",
    "recipient_name": "Mr T Example",
    "recipient_address": "1 Road",
}
WITHHELD_NOTICE = {
    "method": "withheld",
    "legal_guidance_ref": "LG-2025-014",
    "director_permission_by": SETUP_STAFF["director"][1],
    "reason": "Telling the customer would put the reporting officer at risk.",
}
APPEAL = {"grounds": "The incident has been misreported."}
APPEAL_DECISION = {"outcome": "upheld", "reasons": "The panel's assessment stands."}
REVIEW = {"outcome": "continue", "notes": "Further incidents since the flag was raised."}
WITHDRAW = {"reason": "Raised against the wrong customer record."}


def panel_decision(role: str) -> Case:
    holders = {r for r, held in ROLE_PERMISSIONS.items() if "panel.decide" in held}
    return Case(
        "/api/v1/flags/<flag_id>/panel-decisions",
        201,
        "panel.decide",
        label=f"deciding as {role}: only a panel member holding {role} may",
        json={"role": role, "decision": "approve", **ASSESSMENT},
        denied_roles=frozenset(holders - {role}),
        prepare=on_flag(_proposed, "/panel-decisions"),
    )


GRANT = {"reason_code": "home_visit", "reason_text": "Home visit about the repair"}


def on_granted_flag(
    stage: Callable[..., str] = _active, suffix: str = "/details"
) -> Callable[[Flask, str], str]:
    """A fresh flag at `stage`, and a live access grant of the caller for its subject.

    The grant is written directly: a role without details.request could not make one through
    the API, yet must still be refused the details.
    """
    from datetime import UTC, datetime, timedelta

    from sidecar.lookup.models import AccessGrant

    def prepare(app: Flask, role: str) -> str:
        flag_id = stage(app)
        with app.extensions["forewarn"].database.transaction() as session:
            session.add(
                AccessGrant(
                    user_id=matrix_user(role),
                    subject_kind="customer",
                    subject_ref="CRM-2001",
                    expires_at=datetime.now(UTC) + timedelta(hours=1),
                    **GRANT,
                )
            )
        return f"/api/v1/flags/{flag_id}{suffix}"

    return prepare


CONSOLE_INCIDENT = {
    "kind": "customer",
    "ref": "CRM-2001",
    "occurred_on": ["1", "3", "2025"],
    "occurred_time": "10:30",
    "channel": "in_person",
    "behaviour_types": ["threats"],
    "narrative": "Threatened the receptionist when told the office was closing.",
    "warning_given": "yes",
    "reporter_kind": "staff",
}
CONSOLE_TRIAGE = {
    "outcome": "refer_to_case_review",
    "channel": "in person at reception",
    "circumstances": "told the office was closing",
    "known_to_council": "yes",
    "support_needs": "none known",
}


def on_console_incident(app: Flask, role: str) -> str:
    return f"/console/incidents/{_incident(app)}/triage"


def on_console_proposal(app: Flask, role: str) -> str:
    return f"/console/flags/{_proposed(app)}/panel"


CONSOLE_PROPOSAL = {
    "level": "red",
    "categories": ["physical_violence"],
    "restrictions": ["visits_in_pairs"],
    "reason": "Struck an officer with a walking stick at reception.",
    "control_measures": "Meet only at the civic centre with two officers.",
    "responsible_manager": SETUP_RESPONSIBLE_MANAGER,
    "review_months": "12",
    "protects": ["staff"],
}
CONSOLE_VOTE = {
    "decision": "approve",
    "severity": "high",
    "frequency": "single serious incident",
    "proportionality": "The least restriction that keeps staff safe.",
    "reasonable_adjustments": "Hearing aid noted; letters in large print.",
}


def _console_form(app: Flask, who: str, path: str, form: dict[str, str]) -> None:
    """Post a console form as set-up staff (a bearer header needs no form token)."""
    reply = app.test_client().post(path, data=form, headers=_bearer(app, who))
    assert reply.status_code == 302, (path, reply.status_code)


def on_console_flag(
    stage: Callable[..., str], suffix: str, *, involve: bool = False
) -> Callable[[Flask, str], str]:
    """A fresh flag at `stage` for each caller, and its console page `suffix`."""

    def prepare(app: Flask, role: str) -> str:
        flag_id = stage(app, matrix_user(role)) if involve else stage(app)
        return f"/console/flags/{flag_id}{suffix}"

    return prepare


CONSOLE_RECIPIENT = {"recipient_name": "Mr T Example", "recipient_address": "1 Road"}
CONSOLE_GUIDANCE = {"legal_guidance_ref": "LG-2025-014", "reason": "It would put staff at risk."}


def on_console_guidance(app: Flask, role: str) -> str:
    """An active flag whose letter the Head of Legal advises withholding."""
    path = f"/console/flags/{_active(app)}/notice"
    _console_form(app, "legal", path + "/guidance", CONSOLE_GUIDANCE)
    return path + "/permission"


def on_console_guidance_refusal(app: Flask, role: str) -> str:
    """The refusal of permission, on guidance the Head of Legal recorded."""
    return on_console_guidance(app, role).removesuffix("/permission") + "/refusal"


def on_console_appeal(suffix: str, *, involve: bool = False) -> Callable[[Flask, str], str]:
    """A fresh notified flag with an appeal lodged against it, and the appeal's page `suffix`."""

    def prepare(app: Flask, role: str) -> str:
        flag_id = _notified(app, matrix_user(role)) if involve else _notified(app)
        appeal = _call(app, "officer", "POST", f"/api/v1/flags/{flag_id}/appeals", APPEAL, 201)
        return f"/console/flags/{flag_id}/appeals/{appeal['id']}{suffix}"

    return prepare


def _today_boxes() -> list[str]:
    from datetime import date

    today = date.today()
    return [str(today.day), str(today.month), str(today.year)]


CONSOLE_APPEAL = {"received_on": _today_boxes(), "grounds": "The incident was misreported."}
CONSOLE_DECISION = {"outcome": "upheld", "reasons": "The panel's assessment stands."}


def console_letter_cases(suffix: str) -> tuple[Case, ...]:
    """A sent letter's console page (`suffix`: the page, its print view or its PDF)."""
    rule = "/console/flags/<flag_id>/letters/<int:n>" + suffix
    return (
        Case(
            rule,
            403,
            "flag.read",
            label="no grant and no relationship: letters follow the details rule, so sending "
            "letters (notice.issue) opens none",
            anonymous=302,
            prepare=on_console_flag(_notified, "/letters/1" + suffix),
        ),
        Case(
            rule,
            200,
            "flag.read",
            label="reader named responsible manager: involvement opens the text to readers "
            "whose role may request details (legal's may not)",
            anonymous=302,
            denied_roles=frozenset({"legal"}),
            prepare=on_console_flag(_notified, "/letters/1" + suffix, involve=True),
        ),
    )


def console_panel_vote(role: str) -> Case:
    holders = {r for r, held in ROLE_PERMISSIONS.items() if "panel.decide" in held}
    return Case(
        "/console/flags/<flag_id>/panel",
        302,
        "panel.decide",
        label=f"voting as {role}: only a panel member holding {role} may",
        form=CONSOLE_VOTE | {"role": role},
        denied_roles=frozenset(holders - {role}),
        anonymous=302,
        prepare=on_console_proposal,
    )


def on_console_alert(app: Flask, role: str) -> str:
    """A fresh open privacy alert, as an access grant with reason 'other' raises one."""
    from sidecar.lookup.models import PrivacyAlert

    alert = PrivacyAlert(
        kind="reason_other",
        user_id=SETUP_STAFF["officer"][1],
        subject_kind="customer",
        subject_ref="CRM-2001",
        detail="grant gives reason 'other': checking a neighbour's complaint",
    )
    with app.extensions["forewarn"].database.transaction() as session:
        session.add(alert)
    return f"/console/privacy-alerts/{alert.id}"


# Console pages (HTML). Not signed in: sent to sign in (302). A request authenticated by an
# Authorization header needs no form token (as for the API); without one, a form posted on
# the cookie needs it (400 without).
CONSOLE_MATRIX: dict[tuple[str, str], tuple[Case, ...]] = {
    ("GET", "/"): (Case("/", 200, "banner.read", anonymous=302),),
    ("GET", "/console/sign-in"): (
        Case("/console/sign-in", 302, label="signed in already: on to the home", anonymous=200),
    ),
    ("POST", "/console/sign-in/demo"): (
        Case(
            "/console/sign-in/demo",
            303,
            form={"persona": "demo.agent"},
            label="anonymous without the form's token is refused",
            anonymous=400,
        ),
    ),
    ("POST", "/console/sign-out"): (Case("/console/sign-out", 303, anonymous=400),),
    ("GET", "/console/static/<path:name>"): (Case("/console/static/console.css", 200),),
    ("GET", "/assets/<path:name>"): (Case("/assets/images/govuk-crest.svg", 200),),
    ("GET", "/console/subjects"): (Case("/console/subjects", 200, "flag.read", anonymous=302),),
    ("GET", "/console/subjects/<any(customer, property):kind>/<ref>"): (
        Case(
            "/console/subjects/customer/CRM-2001",
            200,
            "flag.read",
            anonymous=302,
            prepare=after(_incident, "/console/subjects/customer/CRM-2001"),
        ),
    ),
    ("GET", "/console/incidents/new"): (
        Case("/console/incidents/new", 200, "incident.create", anonymous=302),
    ),
    ("POST", "/console/incidents/new"): (
        Case(
            "/console/incidents/new",
            302,
            "incident.create",
            label="recorded, then on to the subject or the home page",
            form=CONSOLE_INCIDENT,
            anonymous=302,
        ),
    ),
    ("GET", "/console/incidents/triage"): (
        Case("/console/incidents/triage", 200, "incident.triage", anonymous=302),
    ),
    ("GET", "/console/incidents/<incident_id>/triage"): (
        Case(
            "/console/incidents/<incident_id>/triage",
            200,
            "incident.triage",
            anonymous=302,
            prepare=on_console_incident,
        ),
    ),
    ("GET", "/console/subjects/<any(customer, property):kind>/<ref>/propose"): (
        Case("/console/subjects/customer/CRM-2001/propose", 200, "flag.propose", anonymous=302),
    ),
    ("POST", "/console/subjects/<any(customer, property):kind>/<ref>/propose"): (
        Case(
            "/console/subjects/customer/CRM-2001/propose",
            302,
            "flag.propose",
            form=CONSOLE_PROPOSAL,
            anonymous=302,
        ),
    ),
    ("GET", "/console/panel"): (Case("/console/panel", 200, "panel.decide", anonymous=302),),
    ("GET", "/console/flags/<flag_id>/panel"): (
        Case(
            "/console/flags/<flag_id>/panel",
            200,
            "panel.decide",
            anonymous=302,
            prepare=on_console_proposal,
        ),
    ),
    ("POST", "/console/flags/<flag_id>/panel"): tuple(
        console_panel_vote(role)
        for role in ("customer_support_manager", "senior_manager", "hs_manager")
    ),
    ("POST", "/console/incidents/<incident_id>/triage"): (
        Case(
            "/console/incidents/<incident_id>/triage",
            302,
            "incident.triage",
            form=CONSOLE_TRIAGE,
            anonymous=302,
            prepare=on_console_incident,
        ),
    ),
    # The privacy officer's pages.
    ("GET", "/console/access-log"): (
        Case("/console/access-log?kind=customer&ref=CRM-2001", 200, "audit.read", anonymous=302),
    ),
    ("GET", "/console/access-log/verify"): (
        Case("/console/access-log/verify", 200, "audit.read", anonymous=302),
    ),
    ("POST", "/console/access-log/verify"): (
        Case("/console/access-log/verify", 200, "audit.read", form={}, anonymous=302),
    ),
    ("GET", "/console/privacy-alerts"): (
        Case("/console/privacy-alerts", 200, "alerts.read", anonymous=302),
    ),
    ("GET", "/console/privacy-alerts/<alert_id>"): (
        Case(
            "/console/privacy-alerts/<alert_id>",
            200,
            "alerts.read",
            anonymous=302,
            prepare=on_console_alert,
        ),
    ),
    ("POST", "/console/privacy-alerts/<alert_id>"): (
        Case(
            "/console/privacy-alerts/<alert_id>",
            302,
            "alerts.read",
            label="closed with a note, then back to the open alerts",
            form={"note": "The officer's manager confirmed the visit."},
            anonymous=302,
            prepare=on_console_alert,
        ),
    ),
    ("GET", "/console/subject-access"): (
        Case("/console/subject-access", 200, "sar.export", anonymous=302),
    ),
    ("GET", "/console/subjects/<any(customer, property):kind>/<ref>/subject-access"): (
        Case(
            "/console/subjects/customer/CRM-2001/subject-access?request_ref=SAR-1",
            200,
            "sar.export",
            anonymous=302,
            prepare=after(
                _proposed, "/console/subjects/customer/CRM-2001/subject-access?request_ref=SAR-1"
            ),
        ),
    ),
    ("GET", "/console/subjects/<any(customer, property):kind>/<ref>/subject-access.json"): (
        Case(
            "/console/subjects/customer/CRM-2001/subject-access.json?request_ref=SAR-1",
            200,
            "sar.export",
            anonymous=302,
            prepare=after(
                _proposed,
                "/console/subjects/customer/CRM-2001/subject-access.json?request_ref=SAR-1",
            ),
        ),
    ),
    # Council IT's pages.
    ("GET", "/console/sync"): (Case("/console/sync", 200, "sync.manage", anonymous=302),),
    ("POST", "/console/sync/<connector>/requeue"): (
        Case(
            f"/console/sync/{WEBHOOK_CONNECTOR}/requeue",
            303,
            "sync.manage",
            label="requeued, then back to sync health",
            form={},
            anonymous=302,
        ),
    ),
    ("GET", "/console/flags/awaiting-notice"): (
        Case("/console/flags/awaiting-notice", 200, "flag.read", anonymous=302),
    ),
    ("GET", "/console/flags/awaiting-permission"): (
        Case("/console/flags/awaiting-permission", 200, "notice.permit_withheld", anonymous=302),
    ),
    ("GET", "/console/flags/<flag_id>/notice"): (
        Case(
            "/console/flags/<flag_id>/notice",
            200,
            "notice.issue",
            anonymous=302,
            prepare=on_console_flag(_active, "/notice"),
        ),
    ),
    ("POST", "/console/flags/<flag_id>/notice"): (
        Case(
            "/console/flags/<flag_id>/notice",
            302,
            "notice.issue",
            label="sent, signed by the issuer or the panel's Customer Support Manager",
            form=CONSOLE_RECIPIENT | {"submit": "Send the letter"},
            anonymous=302,
            prepare=on_console_flag(_active, "/notice"),
        ),
    ),
    ("GET", "/console/appeals"): (Case("/console/appeals", 200, "flag.read", anonymous=302),),
    ("GET", "/console/reviews"): (Case("/console/reviews", 200, "flag.read", anonymous=302),),
    ("GET", "/console/flags/<flag_id>/withdraw"): (
        Case(
            "/console/flags/<flag_id>/withdraw",
            200,
            "flag.withdraw",
            anonymous=302,
            prepare=on_console_flag(_active, "/withdraw"),
        ),
    ),
    ("POST", "/console/flags/<flag_id>/withdraw"): (
        Case(
            "/console/flags/<flag_id>/withdraw",
            302,
            "flag.withdraw",
            label="a proposed flag",
            form=WITHDRAW,
            anonymous=302,
            prepare=on_console_flag(_proposed, "/withdraw"),
        ),
        Case(
            "/console/flags/<flag_id>/withdraw",
            302,
            "flag.withdraw",
            label="an active flag",
            form=WITHDRAW,
            anonymous=302,
            prepare=on_console_flag(_active, "/withdraw"),
        ),
    ),
    ("GET", "/console/flags/expiry"): (
        Case("/console/flags/expiry", 200, "flag.withdraw", anonymous=302),
    ),
    ("POST", "/console/flags/expiry"): (
        Case(
            "/console/flags/expiry",
            302,
            "flag.withdraw",
            label="ends the active flags past their end date (none here)",
            form={},
            anonymous=302,
        ),
    ),
    ("GET", "/console/system"): (Case("/console/system", 200, "sync.manage", anonymous=302),),
    ("GET", "/console/notifications"): (
        Case("/console/notifications", 200, "sync.manage", anonymous=302),
    ),
    ("POST", "/console/notifications/requeue"): (
        Case(
            "/console/notifications/requeue",
            303,
            "sync.manage",
            label="requeued, then back to the notifications",
            form={},
            anonymous=302,
        ),
    ),
    ("GET", "/console/sessions"): (
        Case("/console/sessions?user=u.leaver", 200, "sessions.manage", anonymous=302),
    ),
    ("POST", "/console/sessions/end"): (
        Case(
            "/console/sessions/end",
            303,
            "sessions.manage",
            label="ended, then back to the member of staff's sessions",
            form={"user": "u.leaver", "reason": "Left the council."},
            anonymous=302,
        ),
    ),
    ("GET", "/console/reports/summary"): (
        Case("/console/reports/summary", 200, "report.read", anonymous=302),
        Case(
            "/console/reports/summary?start=1&start=4&start=2026&end=31&end=3&end=2027",
            200,
            "report.read",
            label="a chosen date range",
            anonymous=302,
        ),
    ),
    ("GET", "/console/flags/<flag_id>/review"): (
        Case(
            "/console/flags/<flag_id>/review",
            200,
            "review.record",
            anonymous=302,
            prepare=on_console_flag(_notified, "/review"),
        ),
    ),
    ("POST", "/console/flags/<flag_id>/review"): (
        Case(
            "/console/flags/<flag_id>/review",
            302,
            "review.record",
            label="an assigned reviewer records it, then on to the outcome letter",
            form={"outcome": "continue", "notes": "Further incidents since the flag was raised."},
            anonymous=302,
            prepare=on_console_assigned_review,
        ),
    ),
    ("GET", "/console/flags/<flag_id>/reviewers"): (
        Case(
            "/console/flags/<flag_id>/reviewers",
            200,
            "review.assign",
            anonymous=302,
            prepare=on_console_flag(_notified, "/reviewers"),
        ),
    ),
    ("POST", "/console/flags/<flag_id>/reviewers"): (
        Case(
            "/console/flags/<flag_id>/reviewers",
            302,
            "review.assign",
            label="a Senior Manager known to Forewarn (the panel's) is named reviewer",
            form={"reviewers": SETUP_STAFF["sm"][1]},
            anonymous=302,
            prepare=on_console_flag(_notified, "/reviewers"),
        ),
    ),
    ("GET", "/console/appeals/windows"): (
        Case("/console/appeals/windows", 200, "appeal.lodge", anonymous=302),
    ),
    ("GET", "/console/flags/<flag_id>/appeals/new"): (
        Case(
            "/console/flags/<flag_id>/appeals/new",
            200,
            "appeal.lodge",
            anonymous=302,
            prepare=on_console_flag(_notified, "/appeals/new"),
        ),
    ),
    ("POST", "/console/flags/<flag_id>/appeals/new"): (
        Case(
            "/console/flags/<flag_id>/appeals/new",
            302,
            "appeal.lodge",
            form=CONSOLE_APPEAL,
            anonymous=302,
            prepare=on_console_flag(_notified, "/appeals/new"),
        ),
    ),
    ("GET", "/console/flags/<flag_id>/appeals/<appeal_id>/handler"): (
        Case(
            "/console/flags/<flag_id>/appeals/<appeal_id>/handler",
            200,
            "appeal.assign",
            anonymous=302,
            prepare=on_console_appeal("/handler"),
        ),
    ),
    ("POST", "/console/flags/<flag_id>/appeals/<appeal_id>/handler"): (
        Case(
            "/console/flags/<flag_id>/appeals/<appeal_id>/handler",
            302,
            "appeal.assign",
            label="a Senior Manager known to Forewarn (the panel's) is named handler",
            form={"manager": SETUP_STAFF["sm"][1]},
            anonymous=302,
            prepare=on_console_appeal("/handler"),
        ),
    ),
    ("GET", "/console/flags/<flag_id>/appeals/<appeal_id>/decision"): (
        Case(
            "/console/flags/<flag_id>/appeals/<appeal_id>/decision",
            200,
            "appeal.decide",
            label="an involved director sees why they may not decide, instead of the form",
            anonymous=302,
            prepare=on_console_appeal("/decision", involve=True),
        ),
    ),
    ("POST", "/console/flags/<flag_id>/appeals/<appeal_id>/decision"): (
        Case(
            "/console/flags/<flag_id>/appeals/<appeal_id>/decision",
            302,
            "appeal.decide",
            label="director with no part in the case decides",
            form=CONSOLE_DECISION,
            anonymous=302,
            prepare=on_console_appeal("/decision"),
        ),
        Case(
            "/console/flags/<flag_id>/appeals/<appeal_id>/decision",
            302,
            "appeal.decide",
            label="director named responsible manager: refused though the role holds appeal.decide",
            form=CONSOLE_DECISION,
            anonymous=302,
            denied_roles=frozenset({"service_director"}),
            prepare=on_console_appeal("/decision", involve=True),
        ),
    ),
    ("GET", "/console/flags/<flag_id>/letters/<int:n>"): console_letter_cases(""),
    ("GET", "/console/flags/<flag_id>/letters/<int:n>/print"): console_letter_cases("/print"),
    ("GET", "/console/flags/<flag_id>/letters/<int:n>/pdf"): console_letter_cases("/pdf"),
    ("GET", "/console/flags/<flag_id>/notice/guidance"): (
        Case(
            "/console/flags/<flag_id>/notice/guidance",
            200,
            "notice.record_guidance",
            anonymous=302,
            prepare=on_console_flag(_active, "/notice/guidance"),
        ),
    ),
    ("POST", "/console/flags/<flag_id>/notice/guidance"): (
        Case(
            "/console/flags/<flag_id>/notice/guidance",
            302,
            "notice.record_guidance",
            form=CONSOLE_GUIDANCE,
            anonymous=302,
            prepare=on_console_flag(_active, "/notice/guidance"),
        ),
    ),
    ("GET", "/console/flags/<flag_id>/notice/permission"): (
        Case(
            "/console/flags/<flag_id>/notice/permission",
            200,
            "notice.permit_withheld",
            label="the guidance's reason is shown to the director who may permit",
            anonymous=302,
            prepare=on_console_guidance,
        ),
    ),
    ("POST", "/console/flags/<flag_id>/notice/permission"): (
        Case(
            "/console/flags/<flag_id>/notice/permission",
            302,
            "notice.permit_withheld",
            label="the director signed in gives the permission in their own name",
            form={},
            anonymous=302,
            prepare=on_console_guidance,
        ),
    ),
    ("POST", "/console/flags/<flag_id>/notice/refusal"): (
        Case(
            "/console/flags/<flag_id>/notice/refusal",
            302,
            "notice.permit_withheld",
            label="the director signed in refuses the permission in their own name, with a reason",
            form={"refusal_reason": "He should be told; the visits in pairs manage the risk."},
            anonymous=302,
            prepare=on_console_guidance_refusal,
        ),
    ),
}


MATRIX: dict[tuple[str, str], tuple[Case, ...]] = {
    ("GET", "/healthz"): (Case("/healthz", 200),),
    ("GET", "/readyz"): (Case("/readyz", 200),),
    ("GET", "/metrics"): (Case("/metrics", 200),),
    ("GET", "/api/v1/openapi.json"): (Case("/api/v1/openapi.json", 200),),
    ("POST", "/auth/launch"): (Case("/auth/launch", 401, json={"token": "not-a-jwt"}),),
    ("POST", "/auth/logout"): (Case("/auth/logout", 204),),
    ("GET", "/auth/session"): (Case("/auth/session", 200, anonymous=401),),
    ("POST", "/auth/demo"): (Case("/auth/demo", 200, json={"user": "u.demo", "roles": ["agent"]}),),
    # Single sign-on and Canvas are off in the default config.
    ("GET", "/auth/login"): (Case("/auth/login", 404),),
    ("GET", "/auth/callback"): (Case("/auth/callback", 404),),
    ("POST", "/auth/salesforce-canvas"): (
        Case("/auth/salesforce-canvas", 404, form={"signed_request": "x.y"}),
    ),
    # Case management ------------------------------------------------------------------------
    ("POST", "/api/v1/subjects/customer/<ref>/links"): (
        Case(
            "/api/v1/subjects/customer/<ref>/links",
            201,
            "subject.link",
            json=LINK,
            prepare=on_unlinked_customer,
        ),
    ),
    ("POST", "/api/v1/subjects/<kind>/<ref>/decisions"): (
        Case(
            "/api/v1/subjects/customer/CRM-2001/decisions",
            201,
            "decision.record",
            json=DECISION,
            prepare=on_decision_log,
        ),
    ),
    ("GET", "/api/v1/subjects/<kind>/<ref>/decisions"): (
        Case("/api/v1/subjects/customer/CRM-2001/decisions", 200, "decision.read"),
    ),
    ("POST", "/api/v1/decisions/<decision_id>/lift"): (
        Case("/api/v1/decisions/<id>/lift", 200, "decision.record", json=LIFT, prepare=on_decision),
    ),
    ("GET", "/api/v1/subjects/customer/<ref>/links"): (
        Case("/api/v1/subjects/customer/CRM-2001/links", 200, "flag.read"),
    ),
    ("DELETE", "/api/v1/subjects/customer/<ref>/links/<uprn>"): (
        Case(
            "/api/v1/subjects/customer/<ref>/links/<uprn>",
            204,
            "subject.link",
            prepare=on_linked_customer,
        ),
    ),
    ("POST", "/api/v1/incidents"): (
        Case("/api/v1/incidents", 201, "incident.create", json=INCIDENT),
    ),
    ("GET", "/api/v1/incidents"): (
        Case(
            "/api/v1/incidents",
            200,
            "incident.read",
            prepare=after(_incident, "/api/v1/incidents?kind=customer&ref=CRM-2001"),
        ),
    ),
    ("POST", "/api/v1/incidents/<incident_id>/triage"): (
        Case(
            "/api/v1/incidents/<incident_id>/triage",
            200,
            "incident.triage",
            json=TRIAGE,
            prepare=on_new_incident,
        ),
    ),
    ("POST", "/api/v1/flags"): (Case("/api/v1/flags", 201, "flag.propose", json=PROPOSAL),),
    ("GET", "/api/v1/flags/<flag_id>"): (
        Case(
            "/api/v1/flags/<flag_id>",
            200,
            "flag.read",
            label="uninvolved reader: the record without its confidential fields",
            prepare=on_flag(_active),
        ),
        Case(
            "/api/v1/flags/<flag_id>",
            200,
            "flag.read",
            label="reader named responsible manager: the record with its confidential fields",
            prepare=on_flag(_active, involve=True),
        ),
    ),
    ("POST", "/api/v1/flags/<flag_id>/panel-decisions"): tuple(
        panel_decision(role)
        for role in ("customer_support_manager", "senior_manager", "hs_manager")
    ),
    ("POST", "/api/v1/flags/<flag_id>/notice"): (
        Case(
            "/api/v1/flags/<flag_id>/notice",
            201,
            "notice.issue",
            label="decision letter, signed by the panel's Customer Support Manager",
            json=LETTER_NOTICE,
            prepare=on_flag(_active, "/notice"),
        ),
        Case(
            "/api/v1/flags/<flag_id>/notice",
            201,
            "notice.issue",
            label="letter withheld: the issuer needs notice.issue and names the permitting "
            "Service Director, who need not be the caller",
            json=WITHHELD_NOTICE,
            prepare=on_withheld_permission_known,
        ),
    ),
    ("POST", "/api/v1/flags/<flag_id>/notice/guidance"): (
        Case(
            "/api/v1/flags/<flag_id>/notice/guidance",
            201,
            "notice.record_guidance",
            json=CONSOLE_GUIDANCE,
            prepare=on_flag(_active, "/notice/guidance"),
        ),
    ),
    ("POST", "/api/v1/flags/<flag_id>/notice/permission"): (
        Case(
            "/api/v1/flags/<flag_id>/notice/permission",
            201,
            "notice.permit_withheld",
            label="the caller's own permission, on guidance the Head of Legal recorded",
            prepare=on_guidance,
        ),
    ),
    ("POST", "/api/v1/flags/<flag_id>/notice/refusal"): (
        Case(
            "/api/v1/flags/<flag_id>/notice/refusal",
            201,
            "notice.permit_withheld",
            label="the caller's own refusal, with a reason, on guidance the Head of Legal recorded",
            json={"reason": "He should be told; the visits in pairs manage the risk."},
            prepare=on_guidance_refusal,
        ),
    ),
    ("GET", "/api/v1/flags/<flag_id>/letters"): (
        Case(
            "/api/v1/flags/<flag_id>/letters",
            200,
            "flag.read",
            label="the list carries no letter text, so every flag reader sees it",
            prepare=on_flag(_notified, "/letters"),
        ),
    ),
    ("GET", "/api/v1/flags/<flag_id>/letters/<int:n>"): (
        Case(
            "/api/v1/flags/<flag_id>/letters/<int:n>",
            403,
            "flag.read",
            label="no grant and no relationship: letters follow the details rule, so sending "
            "letters (notice.issue) opens none",
            prepare=on_flag(_notified, "/letters/1"),
        ),
        Case(
            "/api/v1/flags/<flag_id>/letters/<int:n>",
            200,
            "flag.read",
            label="the caller holds a live grant for the flag's subject (legal's role may "
            "not request details)",
            denied_roles=frozenset({"legal"}),
            prepare=on_granted_flag(_notified, "/letters/1"),
        ),
        Case(
            "/api/v1/flags/<flag_id>/letters/<int:n>",
            200,
            "flag.read",
            label="reader named responsible manager: involvement opens the text to readers "
            "whose role may request details (legal's may not)",
            denied_roles=frozenset({"legal"}),
            prepare=on_flag(_notified, "/letters/1", involve=True),
        ),
    ),
    ("POST", "/api/v1/flags/<flag_id>/appeals"): (
        Case(
            "/api/v1/flags/<flag_id>/appeals",
            201,
            "appeal.lodge",
            json=APPEAL,
            prepare=on_flag(_notified, "/appeals"),
        ),
    ),
    ("POST", "/api/v1/flags/<flag_id>/appeals/<appeal_id>/handling-manager"): (
        Case(
            "/api/v1/flags/<flag_id>/appeals/<appeal_id>/handling-manager",
            200,
            "appeal.assign",
            label="assigning a Senior Manager known to the directory",
            json={"handling_manager": SETUP_STAFF["sm"][1]},
            prepare=on_pending_appeal(suffix="/handling-manager"),
        ),
    ),
    ("POST", "/api/v1/flags/<flag_id>/appeals/<appeal_id>/decision"): (
        Case(
            "/api/v1/flags/<flag_id>/appeals/<appeal_id>/decision",
            200,
            "appeal.decide",
            label="director with no part in the case decides",
            json=APPEAL_DECISION,
            prepare=on_pending_appeal(),
        ),
        Case(
            "/api/v1/flags/<flag_id>/appeals/<appeal_id>/decision",
            200,
            "appeal.decide",
            label="director named responsible manager: any prior involvement refuses the "
            "decision, though the role holds appeal.decide",
            json=APPEAL_DECISION,
            denied_roles=frozenset({"service_director"}),
            prepare=on_pending_appeal(involve=True),
        ),
    ),
    ("POST", "/api/v1/flags/<flag_id>/review-assignments"): (
        Case(
            "/api/v1/flags/<flag_id>/review-assignments",
            201,
            "review.assign",
            label="naming a Senior Manager known to the directory",
            json={"reviewers": [SETUP_STAFF["sm"][1]]},
            prepare=on_flag(_notified, "/review-assignments"),
        ),
    ),
    ("POST", "/api/v1/flags/<flag_id>/reviews"): (
        Case(
            "/api/v1/flags/<flag_id>/reviews",
            201,
            "review.record",
            label="no review assignment names the caller: the permission alone reviews nothing",
            json=REVIEW,
            denied_roles=REVIEWERS,
            prepare=on_flag(_notified, "/reviews"),
        ),
        Case(
            "/api/v1/flags/<flag_id>/reviews",
            201,
            "review.record",
            label="the flag's review assignment names the caller",
            json=REVIEW,
            prepare=on_assigned_review,
        ),
    ),
    ("GET", "/api/v1/reviews/due"): (Case("/api/v1/reviews/due", 200, "flag.read"),),
    ("GET", "/api/v1/appeal-windows"): (
        Case("/api/v1/appeal-windows", 200, "appeal.lodge"),
        Case("/api/v1/appeal-windows?page=0", 422, "appeal.lodge", label="a page before the first"),
    ),
    ("POST", "/api/v1/flags/<flag_id>/withdraw"): (
        Case(
            "/api/v1/flags/<flag_id>/withdraw",
            200,
            "flag.withdraw",
            label="a proposed flag",
            json=WITHDRAW,
            prepare=on_flag(_proposed, "/withdraw"),
        ),
        Case(
            "/api/v1/flags/<flag_id>/withdraw",
            200,
            "flag.withdraw",
            label="an active flag",
            json=WITHDRAW,
            prepare=on_flag(_active, "/withdraw"),
        ),
    ),
    ("GET", "/api/v1/reports/summary"): (
        Case("/api/v1/reports/summary", 200, "report.read"),
        Case("/api/v1/reports/summary?format=html", 200, "report.read", label="printable"),
    ),
    # Audit ----------------------------------------------------------------------------------
    ("GET", "/api/v1/audit"): (
        Case("/api/v1/audit?kind=customer&ref=CRM-2001", 200, "audit.read"),
    ),
    ("GET", "/api/v1/audit/verify"): (Case("/api/v1/audit/verify", 200, "audit.read"),),
    ("GET", "/api/v1/subjects/<kind>/<ref>/sar-export"): (
        Case(
            "/api/v1/subjects/<kind>/<ref>/sar-export",
            200,
            "audit.read",
            label="the access report: no confidential field",
            prepare=after(_proposed, "/api/v1/subjects/customer/CRM-2001/sar-export"),
        ),
    ),
    ("POST", "/api/v1/subjects/<kind>/<ref>/subject-access-export"): (
        Case(
            "/api/v1/subjects/<kind>/<ref>/subject-access-export",
            200,
            "sar.export",
            label="the person's data, for one subject access request",
            json={"request_ref": "SAR-2026-014"},
            prepare=after(_proposed, "/api/v1/subjects/customer/CRM-2001/subject-access-export"),
        ),
    ),
    # Sync -----------------------------------------------------------------------------------
    ("GET", "/api/v1/sync/status"): (Case("/api/v1/sync/status", 200, "sync.manage"),),
    ("POST", "/api/v1/sync/reconcile"): (
        Case(
            "/api/v1/sync/reconcile",
            200,
            "sync.manage",
            label="pushes the flagged subject's status to the CRM's webhook",
            json={"connector": WEBHOOK_CONNECTOR},
            prepare=after(_active, "/api/v1/sync/reconcile"),
        ),
    ),
    # Lookup ---------------------------------------------------------------------------------
    ("GET", "/api/v1/subjects/<kind>/<ref>/banner"): (
        Case("/api/v1/subjects/customer/CRM-2001/banner", 200, "banner.read"),
    ),
    ("POST", "/api/v1/subjects/<kind>/<ref>/access-grants"): (
        Case(
            "/api/v1/subjects/customer/CRM-2001/access-grants",
            201,
            "details.request",
            json=GRANT,
        ),
    ),
    ("GET", "/api/v1/access-reasons"): (Case("/api/v1/access-reasons", 200, "details.request"),),
    ("GET", "/api/v1/flags/<flag_id>/details"): (
        Case(
            "/api/v1/flags/<flag_id>/details",
            403,
            "details.request",
            label="no grant and no relationship: the permission alone opens nothing",
            prepare=on_flag(_active, "/details"),
        ),
        Case(
            "/api/v1/flags/<flag_id>/details",
            200,
            "details.request",
            label="the caller holds a live grant for the flag's subject",
            prepare=on_granted_flag(),
        ),
    ),
    ("GET", "/api/v1/alerts"): (Case("/api/v1/alerts", 200, "alerts.read"),),
    # FHIR R4: the banner's status, so the banner's permission
    ("GET", "/fhir/r4/Flag"): (
        Case("/fhir/r4/Flag?subject:identifier=CRM-2001", 200, "banner.read"),
    ),
    ("GET", "/fhir/r4/Flag/<flag_id>"): (
        Case(
            "/fhir/r4/Flag/<flag_id>",
            200,
            "banner.read",
            label="an active flag",
            prepare=lambda app, role: f"/fhir/r4/Flag/{_active(app)}",
        ),
    ),
    ("GET", "/fhir/r4/CodeSystem/<code_system>"): (
        Case("/fhir/r4/CodeSystem/forewarn-flag-category", 200, "banner.read"),
    ),
    ("GET", "/fhir/r4/metadata"): (Case("/fhir/r4/metadata", 200),),
    # Widget pages (public: the embed page's token is its proof; demo pages exist in demo mode)
    ("GET", "/widget/<name>"): (Case("/widget/forewarn.js", 200),),
    ("GET", "/embed"): (Case("/embed?kind=customer&ref=CRM-2001", 200),),
    ("POST", "/embed"): (
        Case("/embed?kind=customer&ref=CRM-2001", 200, form={"launch_token": "x"}),
    ),
    ("GET", "/demo/crm"): (Case("/demo/crm", 200),),
    ("POST", "/demo/launch-token"): (Case("/demo/launch-token", 200, json={}),),
    **CONSOLE_MATRIX,
}


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """The default config plus one CRM connector, a real webhook receiver, for the sync rows."""
    with FakeWebhookReceiver.start() as receiver:
        receiver.seed("customer", "CRM-2001")
        for name, value in receiver.environ.items():
            monkeypatch.setenv(name, value)
        yield make_settings(
            connectors={WEBHOOK_CONNECTOR: {"kind": "webhook", **receiver.settings()}}
        )


def declared_routes(app: Flask) -> dict[tuple[str, str], Any]:
    by_endpoint = dict(endpoints(app))
    routes = {}
    for rule in app.url_map.iter_rules():
        spec = by_endpoint.get(rule.endpoint)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes[(method, rule.rule)] = spec
    return routes


def test_every_route_declares_an_action_or_is_explicitly_public(app) -> None:
    problems = []
    for (method, rule), spec in sorted(declared_routes(app).items()):
        if spec is None:
            problems.append(f"{method} {rule}: not declared with sidecar.api.endpoint.endpoint")
        elif spec.action is None and (method, rule) not in PUBLIC_ROUTES:
            problems.append(f"{method} {rule}: no action and not listed as public")
        elif spec.action is not None and spec.action not in PERMISSIONS:
            problems.append(f"{method} {rule}: action {spec.action!r} is not a permission")
    assert not problems, "\n".join(problems)


def test_matrix_has_a_row_for_every_route(app) -> None:
    present = set(declared_routes(app))
    missing = sorted(present - set(MATRIX))
    stale = sorted(set(MATRIX) - present)
    assert not missing, f"routes without an expected row in MATRIX: {missing}"
    assert not stale, f"MATRIX rows for routes that no longer exist: {stale}"


def test_matrix_actions_match_the_declarations(app) -> None:
    routes = declared_routes(app)
    for key, cases in MATRIX.items():
        if key in routes and routes[key] is not None:
            for case in cases:
                assert case.action == routes[key].action, f"{key} declares {routes[key].action}"


def test_config_grants_exactly_the_matrix_permissions(settings) -> None:
    assert {role: frozenset(p) for role, p in settings.access.roles.items()} == ROLE_PERMISSIONS
    assert set(ROLE_PERMISSIONS) == set(ROLES)


@pytest.mark.parametrize(
    "key", sorted(MATRIX), ids=[f"{method} {rule}" for method, rule in sorted(MATRIX)]
)
def test_authorization_matrix(app, auth_headers, key) -> None:
    method, _ = key
    failures = []
    for case in MATRIX[key]:
        for role in (ANONYMOUS, *ROLES):
            client = app.test_client()
            headers = {} if role == ANONYMOUS else auth_headers(role, user=matrix_user(role))
            path = case.prepare(app, role) if case.prepare else case.path
            response = client.open(
                path, method=method, headers=headers, json=case.json, data=case.form
            )
            if response.status_code != case.expected(role):
                failures.append(
                    f"{method} {path} {case.label} as {role}: "
                    f"{response.status_code}, expected {case.expected(role)}"
                )
    assert not failures, "\n".join(failures)
