"""What each operation may disclose to whom: docs/threat-model.md, "Who may read what", as data.

Every operation of the OpenAPI document has an entry here: the real ids its calls use, the
body a write sends, and which confidential fields each caller may see in its answer (`may`)
and, where the caller is entitled to them, must see (`must`, so no cell passes vacuously).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.disclosure.case import ANONYMOUS, FIELDS, PANEL, PROPERTY, SUBJECT, Persona, of
from tests.identity.test_routes import (
    CONSOLE_INCIDENT,
    CONSOLE_PROPOSAL,
    CONSOLE_TRIAGE,
    CONSOLE_VOTE,
    GRANT,
    ROLE_PERMISSIONS,
    TRIAGE,
)
from tests.lifecycle.conftest import ASSESSMENT, PROPOSAL

Fields = frozenset[str]
NONE: Fields = frozenset()
Shows = Callable[[Persona, dict[str, str]], tuple[Fields, Fields]]


def holds(persona: Persona, permission: str) -> bool:
    return persona.role != ANONYMOUS and permission in ROLE_PERMISSIONS[persona.role]


# Who has a business need for what, by the way the persona stands to the case. Flag B has
# ended, so a grant (a need to deal with the subject today) no longer opens it.
NEEDS: dict[str, frozenset[str]] = {
    "A": frozenset({"grant", "party", "reviewer"}),
    "B": frozenset({"party"}),
    "I1": frozenset({"grant", "party", "reviewer"}),
    "I2": frozenset({"grant", "party"}),
    "D": frozenset({"grant", "party"}),
    "grant": frozenset(),
}


def details_rule(persona: Persona, owner: str) -> bool:
    """details.request and a live grant for the subject or a part in the case."""
    return holds(persona, "details.request") and persona.variant in NEEDS[owner]


def _both(fields: Fields) -> tuple[Fields, Fields]:
    return fields, fields


def nothing(persona: Persona, target: dict[str, str]) -> tuple[Fields, Fields]:
    return NONE, NONE


def flag_record(persona: Persona, target: dict[str, str]) -> tuple[Fields, Fields]:
    owner = target["flag_id"]
    opened = holds(persona, "flag.read") and details_rule(persona, owner)
    return _both(of(owner) if opened else NONE)


def _details_of(owner: str) -> Fields:
    low = owner.lower()
    found = {f"{low}_reason", f"{low}_control", f"{low}_adjustments"}
    # Flag B protects a councillor, named in its details.
    return frozenset(found | ({"b_protected_people"} if owner == "B" else set()))


def flag_details(persona: Persona, target: dict[str, str]) -> tuple[Fields, Fields]:
    owner = target["flag_id"]
    return _both(_details_of(owner) if details_rule(persona, owner) else NONE)


LETTER_SHOWS = {
    "1": frozenset({"a_reason", "a_recipient_name", "a_recipient_address"}),
    "2": frozenset({"a_appeal_reasons"}),
    "3": frozenset({"a_review_notes"}),
}


def letter(persona: Persona, target: dict[str, str]) -> tuple[Fields, Fields]:
    if holds(persona, "flag.read") and details_rule(persona, target["flag_id"]):
        return of(target["flag_id"]), LETTER_SHOWS[target["n"]]
    return NONE, NONE


def _incidents(persona: Persona, owners: dict[str, Fields]) -> Fields:
    return frozenset().union(*(f for o, f in owners.items() if details_rule(persona, o)))


def incident_register(persona: Persona, target: dict[str, str]) -> tuple[Fields, Fields]:
    if not holds(persona, "incident.read"):
        return NONE, NONE
    return _both(_incidents(persona, {"I1": of("I1"), "I2": of("I2")}))


def subject_page(persona: Persona, target: dict[str, str]) -> tuple[Fields, Fields]:
    """Flags without their confidential fields; narratives (not considerations) as the API."""
    if not (holds(persona, "flag.read") and holds(persona, "incident.read")):
        return NONE, NONE
    narratives = {
        "I1": frozenset({"i1_narrative"}),
        "I2": frozenset({"i2_narrative", "i2_reporter_name"}),
    }
    return _both(_incidents(persona, narratives))


def triage_page(persona: Persona, target: dict[str, str]) -> tuple[Fields, Fields]:
    """The narrative under the details rule, or while the incident awaits the reader's triage."""
    owner = target["incident_id"]
    if not holds(persona, "incident.triage"):
        return NONE, NONE
    # The narrative, and the name of the councillor it happened to (I2's), open together.
    narrative = frozenset({f"{owner.lower()}_narrative"}) | (
        {"i2_reporter_name"} if owner == "I2" else set()
    )
    awaiting = owner == "I2"
    return _both(narrative if awaiting or details_rule(persona, owner) else NONE)


def panel_page(persona: Persona, target: dict[str, str]) -> tuple[Fields, Fields]:
    owner = target["flag_id"]
    opened = holds(persona, "panel.decide") and details_rule(persona, owner)
    return _both(_details_of(owner) | {f"{owner.lower()}_no_warning"} if opened else NONE)


def decision_log(persona: Persona, target: dict[str, str]) -> tuple[Fields, Fields]:
    if not holds(persona, "decision.read"):
        return NONE, NONE
    return _both(of("D") if details_rule(persona, "D") else NONE)


def subject_access(persona: Persona, target: dict[str, str]) -> tuple[Fields, Fields]:
    """The person's own copy: everything held about them, for the privacy officer alone."""
    if not holds(persona, "sar.export"):
        return NONE, NONE
    return frozenset(FIELDS), frozenset({"a_reason", "i1_narrative", "b_withdraw_reason"})


def why(permission: str, *, shown: bool) -> Shows:
    """Oversight sees that access happened, by whom, when and why (the grant's reason)."""

    def shows(persona: Persona, target: dict[str, str]) -> tuple[Fields, Fields]:
        if not holds(persona, permission):
            return NONE, NONE
        reason = frozenset({"grant_reason"})
        return reason, reason if shown else NONE

    return shows


def rerendered(page: Shows) -> Shows:
    """A refused form shows its page again: what the page may show, nothing it must."""

    def shows(persona: Persona, target: dict[str, str]) -> tuple[Fields, Fields]:
        return page(persona, target)[0], NONE

    return shows


@dataclass(frozen=True)
class Operation:
    """How the leak test calls one operation, and what its answers may disclose."""

    shows: Shows = nothing
    targets: tuple[dict[str, str], ...] = ({},)
    """Values for the operation's parameters; names of the case (A, S, ...) become real ids."""
    body: dict[str, Any] | None = None
    form: dict[str, Any] | None = None
    changes: bool = False
    """Whether an allowed call writes; a refused one (and any call where this is False, the
    targets being chosen so that allowed calls are refused by the lifecycle) changes nothing."""
    fresh: bool = False
    """Each call signs in anew (it ends or replaces the session it is made with)."""


A, B = {"flag_id": "A"}, {"flag_id": "B"}
A_APPEAL = {"flag_id": "A", "appeal_id": "APPEAL"}
A_LETTERS = tuple({"flag_id": "A", "n": n} for n in ("1", "2", "3"))
NO_ONE_DECIDED = {"reason": "Investigated.", "decided_by": "u.nobody", "decided_on": "2026-03-04"}
S = {"kind": "customer", "ref": "S"}
BOTH_FLAGS = (A, B)
PANEL_VOTE = {"role": PANEL[0], "decision": "approve", **ASSESSMENT}

OPERATIONS: dict[tuple[str, str], Operation] = {
    # Reads of the case -----------------------------------------------------------------------
    ("GET", "/api/v1/flags/{flag_id}"): Operation(flag_record, BOTH_FLAGS),
    ("GET", "/api/v1/flags/{flag_id}/details"): Operation(flag_details, BOTH_FLAGS),
    ("GET", "/api/v1/flags/{flag_id}/letters"): Operation(nothing, BOTH_FLAGS),
    ("GET", "/api/v1/flags/{flag_id}/letters/{n}"): Operation(
        letter, tuple({"flag_id": "A", "n": n} for n in LETTER_SHOWS)
    ),
    ("GET", "/api/v1/incidents"): Operation(incident_register, (S,)),
    ("GET", "/api/v1/reviews/due"): Operation(),
    ("GET", "/api/v1/appeal-windows"): Operation(),
    ("GET", "/api/v1/reports/summary"): Operation(),
    ("GET", "/api/v1/subjects/customer/{ref}/links"): Operation(targets=({"ref": "S"},)),
    ("GET", "/api/v1/subjects/{kind}/{ref}/banner"): Operation(
        targets=(S, {"kind": "property", "ref": "P"})
    ),
    ("GET", "/api/v1/access-reasons"): Operation(),
    # FHIR R4: status only, to everyone holding banner.read
    ("GET", "/fhir/r4/Flag"): Operation(
        targets=(
            {"subject:identifier": "S"},
            {"subject:identifier": f"https://fhir.hl7.org.uk/Id/uprn|{PROPERTY}"},
        )
    ),
    ("GET", "/fhir/r4/Flag/{flag_id}"): Operation(targets=BOTH_FLAGS),
    ("GET", "/fhir/r4/CodeSystem/{code_system}"): Operation(
        targets=tuple(
            {"code_system": name}
            for name in (
                "forewarn-flag-category",
                "forewarn-flag-level",
                "forewarn-contact-restriction",
            )
        )
    ),
    ("GET", "/fhir/r4/metadata"): Operation(),
    ("GET", "/api/v1/subjects/{kind}/{ref}/decisions"): Operation(decision_log, (S,)),
    # Oversight -------------------------------------------------------------------------------
    ("GET", "/api/v1/audit"): Operation(
        why("audit.read", shown=True), ({"kind": "customer", "ref": "S", "limit": "500"},)
    ),
    ("GET", "/api/v1/audit/verify"): Operation(),
    ("GET", "/api/v1/alerts"): Operation(why("alerts.read", shown=False)),
    ("GET", "/api/v1/subjects/{kind}/{ref}/sar-export"): Operation(
        why("audit.read", shown=True), (S,)
    ),
    ("POST", "/api/v1/subjects/{kind}/{ref}/subject-access-export"): Operation(
        subject_access, (S,), body={"request_ref": "SAR-LEAK-1"}
    ),
    ("GET", "/api/v1/sync/status"): Operation(),
    # Oldest first, unfiltered: the grant's reason may be on the first page, or later.
    ("GET", "/console/access-log"): Operation(why("audit.read", shown=False)),
    ("GET", "/console/access-log/verify"): Operation(),
    ("GET", "/console/privacy-alerts"): Operation(why("alerts.read", shown=False)),
    ("GET", "/console/privacy-alerts/{alert_id}"): Operation(
        why("alerts.read", shown=False), ({"alert_id": "ALERT"},)
    ),
    ("GET", "/console/subject-access"): Operation(),
    # Without a request's reference these pages export nothing and go back to the form.
    ("GET", "/console/subjects/{kind}/{ref}/subject-access"): Operation(targets=(S,)),
    ("GET", "/console/subjects/{kind}/{ref}/subject-access.json"): (Operation(targets=(S,))),
    ("GET", "/console/appeals"): Operation(),
    ("GET", "/console/appeals/windows"): Operation(),
    ("GET", "/console/flags/awaiting-notice"): Operation(),
    ("GET", "/console/flags/awaiting-permission"): Operation(),
    ("GET", "/console/flags/expiry"): Operation(),
    ("GET", "/console/reviews"): Operation(),
    ("GET", "/console/reports/summary"): Operation(),
    ("GET", "/console/flags/{flag_id}/appeals/new"): Operation(targets=BOTH_FLAGS),
    ("GET", "/console/flags/{flag_id}/appeals/{appeal_id}/decision"): Operation(
        rerendered(flag_record), (A_APPEAL,)
    ),
    ("GET", "/console/flags/{flag_id}/appeals/{appeal_id}/handler"): Operation(targets=(A_APPEAL,)),
    ("GET", "/console/flags/{flag_id}/letters/{n}"): Operation(letter, A_LETTERS),
    ("GET", "/console/flags/{flag_id}/letters/{n}/print"): Operation(letter, A_LETTERS),
    # A PDF's text is compressed: the test reads no marker in it, and the rule is the page's.
    ("GET", "/console/flags/{flag_id}/letters/{n}/pdf"): Operation(rerendered(letter), A_LETTERS),
    ("GET", "/console/flags/{flag_id}/notice"): Operation(targets=BOTH_FLAGS),
    ("GET", "/console/flags/{flag_id}/notice/guidance"): Operation(targets=BOTH_FLAGS),
    ("GET", "/console/flags/{flag_id}/notice/permission"): Operation(targets=BOTH_FLAGS),
    ("GET", "/console/flags/{flag_id}/review"): Operation(targets=BOTH_FLAGS),
    ("GET", "/console/flags/{flag_id}/reviewers"): Operation(targets=BOTH_FLAGS),
    ("GET", "/console/flags/{flag_id}/withdraw"): Operation(targets=BOTH_FLAGS),
    ("GET", "/console/sync"): Operation(),
    ("GET", "/console/system"): Operation(),
    ("GET", "/console/notifications"): Operation(),
    ("GET", "/console/sessions"): Operation(),
    # Operations, sign-in and the widget --------------------------------------------------------
    ("GET", "/healthz"): Operation(),
    ("GET", "/readyz"): Operation(),
    ("GET", "/metrics"): Operation(),
    ("GET", "/api/v1/openapi.json"): Operation(),
    ("GET", "/auth/session"): Operation(),
    ("GET", "/auth/login"): Operation(),
    ("GET", "/auth/callback"): Operation(),
    ("GET", "/widget/{name}"): Operation(targets=({"name": "forewarn.js"},)),
    ("GET", "/embed"): Operation(targets=(S,)),
    ("GET", "/demo/crm"): Operation(),
    # Console pages -----------------------------------------------------------------------------
    ("GET", "/"): Operation(),
    ("GET", "/console/sign-in"): Operation(),
    ("GET", "/console/static/{name}"): Operation(targets=({"name": "console.css"},)),
    ("GET", "/assets/{name}"): Operation(targets=({"name": "images/govuk-crest.svg"},)),
    ("GET", "/console/subjects"): Operation(),
    ("GET", "/console/subjects/{kind}/{ref}"): Operation(subject_page, (S,)),
    ("GET", "/console/subjects/{kind}/{ref}/propose"): Operation(targets=(S,)),
    ("GET", "/console/incidents/new"): Operation(),
    ("GET", "/console/incidents/triage"): Operation(),
    ("GET", "/console/incidents/{incident_id}/triage"): Operation(
        triage_page, ({"incident_id": "I1"}, {"incident_id": "I2"})
    ),
    ("GET", "/console/panel"): Operation(),
    ("GET", "/console/flags/{flag_id}/panel"): Operation(panel_page, BOTH_FLAGS),
    # Writes. Targets are chosen so that no allowed write widens what a persona may read:
    # decided, ended or triaged records refuse them (409), new records carry no marker.
    ("POST", "/api/v1/flags"): Operation(body=PROPOSAL | {"subject": SUBJECT}, changes=True),
    ("POST", "/api/v1/flags/{flag_id}/panel-decisions"): Operation(targets=(A,), body=PANEL_VOTE),
    ("POST", "/api/v1/flags/{flag_id}/notice"): Operation(targets=(A,), body={"method": "letter"}),
    ("POST", "/api/v1/flags/{flag_id}/appeals"): Operation(
        targets=(B,), body={"grounds": "Not me."}
    ),
    ("POST", "/api/v1/flags/{flag_id}/appeals/{appeal_id}/decision"): Operation(
        targets=({"flag_id": "A", "appeal_id": "APPEAL"},),
        body={"outcome": "upheld", "reasons": "The assessment stands."},
    ),
    ("POST", "/api/v1/flags/{flag_id}/appeals/{appeal_id}/handling-manager"): Operation(
        targets=({"flag_id": "A", "appeal_id": "APPEAL"},),
        body={"handling_manager": "u.leak.sm"},
    ),
    ("POST", "/api/v1/flags/{flag_id}/review-assignments"): Operation(
        targets=(B,), body={"reviewers": ["u.leak.reviewer"]}
    ),
    ("POST", "/api/v1/flags/{flag_id}/reviews"): Operation(
        targets=(B,), body={"outcome": "continue", "notes": "No change."}
    ),
    ("POST", "/api/v1/flags/{flag_id}/withdraw"): Operation(
        targets=(B,), body={"reason": "Raised in error."}
    ),
    ("POST", "/api/v1/incidents"): Operation(
        body={
            "subject": SUBJECT,
            "occurred_at": "2026-03-02T10:30:00Z",
            "channel": "phone",
            "behaviour_types": ["threats"],
            "narrative": "Raised his voice on the phone.",
            "warning_given": False,
        },
        changes=True,
    ),
    ("POST", "/api/v1/incidents/{incident_id}/triage"): Operation(
        targets=({"incident_id": "I1"},), body=TRIAGE
    ),
    ("POST", "/api/v1/subjects/customer/{ref}/links"): Operation(
        targets=({"ref": "S"},), body={"property": "100023336957"}, changes=True
    ),
    ("DELETE", "/api/v1/subjects/customer/{ref}/links/{uprn}"): Operation(
        targets=({"ref": "S", "uprn": "P"},), changes=True
    ),
    ("POST", "/api/v1/subjects/{kind}/{ref}/access-grants"): Operation(
        targets=({"kind": "property", "ref": "P"},), body=GRANT, changes=True
    ),
    ("POST", "/api/v1/sync/reconcile"): Operation(body={"connector": "crm_webhook"}),
    # Refused by the service for everyone (nobody of that id is in the directory): recording
    # or lifting a decision would make its recorder a party to the log.
    ("POST", "/api/v1/subjects/{kind}/{ref}/decisions"): Operation(
        targets=(S,), body={**NO_ONE_DECIDED, "kind": "no_reply", "matter": "Letters."}
    ),
    ("POST", "/api/v1/decisions/{decision_id}/lift"): Operation(
        targets=({"decision_id": "DECISION"},),
        body={"reason": "No longer needed.", "decided_by": "u.nobody", "lifted_on": "2026-03-04"},
    ),
    ("POST", "/auth/launch"): Operation(body={"token": "not-a-jwt"}),
    ("POST", "/auth/logout"): Operation(fresh=True, changes=True),
    ("POST", "/auth/demo"): Operation(
        body={"user": "u.leak.demo", "roles": ["agent"]}, fresh=True, changes=True
    ),
    ("POST", "/auth/salesforce-canvas"): Operation(form={"signed_request": "x.y"}),
    ("POST", "/embed"): Operation(targets=(S,), form={"launch_token": "x"}),
    ("POST", "/demo/launch-token"): Operation(body={}),
    ("POST", "/console/sign-in/demo"): Operation(
        form={"persona": "demo.agent"}, fresh=True, changes=True
    ),
    ("POST", "/console/sign-out"): Operation(fresh=True, changes=True),
    ("POST", "/console/access-log/verify"): Operation(form={}),
    # Ends a made-up user's sessions: it opens nothing and changes no register row.
    ("POST", "/console/sessions/end"): Operation(form={"user": "u.nobody", "reason": "Left."}),
    # Each refused by the lifecycle: flag A is notified and its appeal decided, B has ended,
    # and no flag is past its end date.
    ("POST", "/api/v1/flags/{flag_id}/notice/guidance"): Operation(
        targets=(A,), body={"legal_guidance_ref": "LG-2", "reason": "Risk of harm."}
    ),
    ("POST", "/api/v1/flags/{flag_id}/notice/permission"): Operation(targets=(A,)),
    ("POST", "/api/v1/flags/{flag_id}/notice/refusal"): Operation(
        targets=(A,), body={"reason": "He should be told."}
    ),
    ("POST", "/console/flags/expiry"): Operation(form={}),
    ("POST", "/console/flags/{flag_id}/appeals/new"): Operation(
        targets=(B,), form={"grounds": "Not me."}
    ),
    ("POST", "/console/flags/{flag_id}/appeals/{appeal_id}/decision"): Operation(
        rerendered(flag_record), (A_APPEAL,), form={"outcome": "upheld", "reasons": "It stands."}
    ),
    ("POST", "/console/flags/{flag_id}/appeals/{appeal_id}/handler"): Operation(
        targets=(A_APPEAL,), form={"manager": "u.leak.sm"}
    ),
    ("POST", "/console/flags/{flag_id}/notice"): Operation(
        targets=(A,), form={"recipient_name": "Mr T", "recipient_address": "1 Road"}
    ),
    ("POST", "/console/flags/{flag_id}/notice/guidance"): Operation(
        targets=(A,), form={"legal_guidance_ref": "LG-2", "reason": "Risk of harm."}
    ),
    ("POST", "/console/flags/{flag_id}/notice/permission"): Operation(targets=(A,), form={}),
    ("POST", "/console/flags/{flag_id}/notice/refusal"): Operation(
        targets=(A,), form={"refusal_reason": "He should be told."}
    ),
    ("POST", "/console/flags/{flag_id}/review"): Operation(
        targets=(B,), form={"outcome": "continue", "notes": "No change."}
    ),
    ("POST", "/console/flags/{flag_id}/reviewers"): Operation(
        targets=(B,), form={"reviewers": "u.leak.sm"}
    ),
    ("POST", "/console/flags/{flag_id}/withdraw"): Operation(
        targets=(B,), form={"reason": "Raised in error."}
    ),
    ("POST", "/console/privacy-alerts/{alert_id}"): Operation(
        why("alerts.read", shown=False),
        ({"alert_id": "ALERT"},),
        form={"note": "Looked at it."},
        changes=True,
    ),
    ("POST", "/console/notifications/requeue"): Operation(form={}),
    ("POST", "/console/sync/{connector}/requeue"): Operation(
        targets=({"connector": "crm_webhook"},), form={}
    ),
    ("POST", "/console/incidents/new"): Operation(
        form=CONSOLE_INCIDENT | {"ref": PROPERTY, "kind": "property"}, changes=True
    ),
    ("POST", "/console/incidents/{incident_id}/triage"): Operation(
        rerendered(triage_page), ({"incident_id": "I1"},), form=CONSOLE_TRIAGE
    ),
    ("POST", "/console/subjects/{kind}/{ref}/propose"): Operation(
        targets=(S,), form=CONSOLE_PROPOSAL, changes=True
    ),
    ("POST", "/console/flags/{flag_id}/panel"): Operation(
        rerendered(panel_page), (A,), form=CONSOLE_VOTE | {"role": PANEL[0]}
    ),
}
