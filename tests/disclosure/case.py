"""A complete case with a unique marker in every confidential free-text field, and its people.

The case is made through the API as staff would make it, so every field is stored where the
product stores it. Each marker names its field, so a leak says what leaked.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from sidecar.identity.launch import mint_launch_token
from sidecar.settings import ROLES
from sidecar.storage.keys import KeyFiles
from tests.lifecycle.conftest import PROPOSAL

SUBJECT = {"kind": "customer", "ref": "CRM-LEAK-1"}
PROPERTY = "100023336956"
PANEL = ("customer_support_manager", "senior_manager", "hs_manager")
ASSESSED = ("severity", "frequency", "proportionality", "reasonable_adjustments")


def _fields() -> list[tuple[str, str]]:
    """(field, owner) for every confidential free-text field the case holds."""
    found = [("grant_reason", "grant")]
    found += [(f"i1_{n}", "I1") for n in ("narrative", "channel", "circumstances", "support")]
    found += [("i2_narrative", "I2"), ("i2_reporter_name", "I2")]
    for flag in ("A", "B"):
        low = flag.lower()
        found += [(f"{low}_{n}", flag) for n in ("reason", "control", "adjustments", "no_warning")]
        found += [(f"{low}_{role}_{n}", flag) for role in PANEL for n in ASSESSED]
    found += [
        (f"a_{n}", "A")
        for n in ("recipient_name", "recipient_address", "appeal_grounds", "appeal_reasons")
    ]
    found += [("a_review_notes", "A"), ("b_withheld_reason", "B"), ("b_withdraw_reason", "B")]
    found += [("b_protected_people", "B")]
    found += [("d_matter", "D"), ("d_reason", "D")]
    return found


FIELDS: dict[str, str] = dict(_fields())
"""Each confidential field and what it belongs to: flag A or B, incident I1 or I2, the grant."""

MARKERS: dict[str, str] = {
    name: f"LKM{n:03d}{name.replace('_', '')}" for n, name in enumerate(FIELDS)
}
"""The unique marker written into each field: no marker is part of another."""


def text(name: str) -> str:
    return f"{MARKERS[name]} (confidential text of the leak test case)"


def of(owner: str) -> frozenset[str]:
    return frozenset(name for name, held in FIELDS.items() if held == owner)


VARIANTS = ("none", "grant", "party", "reviewer")
"""How a caller stands to the case: no business need; a live access grant for the subject; a
part in the case (responsible manager of both flags, reporter of I2); the reviewer of flag A."""

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Persona:
    """A caller: one role (or none, not signed in) and one way of standing to the case."""

    role: str
    variant: str

    @property
    def user(self) -> str:
        return f"u.leak.{self.variant}"

    @property
    def label(self) -> str:
        return ANONYMOUS if self.role == ANONYMOUS else f"{self.role}-{self.variant}"


PERSONAS = (Persona(ANONYMOUS, "none"), *(Persona(r, v) for r in ROLES for v in VARIANTS))

# Set-up staff: people the personas are not, so a persona's part is only what its variant says.
OFFICER = ("case_officer", "u.leak.officer")
CSM = ("customer_support_manager", "u.leak.csm")
SM = ("senior_manager", "u.leak.sm")
HS = ("hs_manager", "u.leak.hs")
DIRECTOR = ("service_director", "u.leak.director")
APPEAL_DIRECTOR = ("service_director", "u.leak.director2")
PARTY_OFFICER = ("case_officer", "u.leak.party")
REVIEWER = ("senior_manager", "u.leak.reviewer")
GRANT_HOLDER = ("visiting_officer", "u.leak.grant")
AUDITOR = ("auditor", "u.leak.auditor")


@dataclass
class SignedIn:
    """A caller's own client (holding the session cookie) and bearer header."""

    client: FlaskClient
    headers: dict[str, str]


@dataclass
class Case:
    """The seeded app and the real ids the calls substitute for the case's names."""

    app: Flask
    ids: dict[str, str] = field(default_factory=dict)
    _signed_in: dict[tuple[str, str], SignedIn] = field(default_factory=dict)

    def sign_in(self, role: str, user: str, *, fresh: bool = False) -> SignedIn:
        """Sign in through /auth/launch as the CRM host would launch this user in this role."""
        key = (role, user)
        if fresh or key not in self._signed_in:
            settings = self.app.extensions["forewarn"].settings
            launch_key = KeyFiles.of(settings.instance_dir).launch_demo_key.read_bytes()
            token = mint_launch_token(
                launch_key, settings.deployment.public_url, user, f"Leak {user}", [role], 300
            )
            client = self.app.test_client()
            reply = client.post("/auth/launch", json={"token": token})
            assert reply.status_code == 200, reply.get_json()
            bearer = {"Authorization": f"Bearer {reply.get_json()['access_token']}"}
            signed_in = SignedIn(client, bearer)
            if fresh:
                return signed_in
            self._signed_in[key] = signed_in
        return self._signed_in[key]

    def as_persona(self, persona: Persona, *, fresh: bool = False) -> SignedIn:
        if persona.role == ANONYMOUS:
            return SignedIn(self.app.test_client(), {})
        return self.sign_in(persona.role, persona.user, fresh=fresh)

    def call(self, who: tuple[str, str], method: str, path: str, body: Any, status: int) -> Any:
        reply = self.sign_in(*who).client.open(
            path, method=method, json=body, headers=self.sign_in(*who).headers
        )
        assert reply.status_code == status, (method, path, reply.get_json())
        return reply.get_json()


def _incident(case: Case, who: tuple[str, str], narrative: str, **changes: Any) -> str:
    body = {
        "subject": SUBJECT,
        "occurred_at": "2026-03-01T10:30:00Z",
        "channel": "in_person",
        "behaviour_types": ["threats"],
        "narrative": text(narrative),
        "warning_given": True,
        **changes,
    }
    return case.call(who, "POST", "/api/v1/incidents", body, 201)["id"]


def _flag(case: Case, flag: str, incident_ids: list[str], **changes: Any) -> str:
    low = flag.lower()
    proposal = (
        PROPOSAL
        | changes
        | {
            "subject": SUBJECT,
            "reason": text(f"{low}_reason"),
            "control_measures": text(f"{low}_control"),
            "reasonable_adjustments": text(f"{low}_adjustments"),
            "no_warning_reason": text(f"{low}_no_warning"),
            "responsible_manager": PARTY_OFFICER[1],
            "incident_ids": incident_ids,
        }
    )
    flag_id = case.call(OFFICER, "POST", "/api/v1/flags", proposal, 201)["id"]
    for who in (CSM, SM, HS):
        role = who[0]
        vote = {"role": role, "decision": "approve"}
        vote |= {n: text(f"{low}_{role}_{n}") for n in ASSESSED}
        case.call(who, "POST", f"/api/v1/flags/{flag_id}/panel-decisions", vote, 201)
    return flag_id


def _flag_a(case: Case) -> None:
    ids = case.ids
    ids["A"] = flag = _flag(case, "A", [ids["I1"]])
    notice = {
        "method": "letter",
        "recipient_name": text("a_recipient_name"),
        "recipient_address": text("a_recipient_address"),
    }
    case.call(CSM, "POST", f"/api/v1/flags/{flag}/notice", notice, 201)
    case.sign_in(*APPEAL_DIRECTOR)  # in the staff directory, so told of the appeal
    appeal = {"grounds": text("a_appeal_grounds")}
    ids["APPEAL"] = case.call(OFFICER, "POST", f"/api/v1/flags/{flag}/appeals", appeal, 201)["id"]
    decision = {"outcome": "upheld", "reasons": text("a_appeal_reasons")}
    path = f"/api/v1/flags/{flag}/appeals/{ids['APPEAL']}/decision"
    case.call(APPEAL_DIRECTOR, "POST", path, decision, 200)
    case.sign_in(*REVIEWER)
    assignment = {"reviewers": [REVIEWER[1]]}
    case.call(CSM, "POST", f"/api/v1/flags/{flag}/review-assignments", assignment, 201)
    review = {"outcome": "continue", "notes": text("a_review_notes")}
    case.call(REVIEWER, "POST", f"/api/v1/flags/{flag}/reviews", review, 201)


def _flag_b(case: Case) -> None:
    protecting = {
        "protects": ["staff", "councillor"],
        "protected_people": text("b_protected_people"),
    }
    case.ids["B"] = flag = _flag(case, "B", [], **protecting)
    case.sign_in(*DIRECTOR)
    notice = {
        "method": "withheld",
        "legal_guidance_ref": "LG-LEAK-1",
        "director_permission_by": DIRECTOR[1],
        "reason": text("b_withheld_reason"),
    }
    case.call(CSM, "POST", f"/api/v1/flags/{flag}/notice", notice, 201)
    withdraw = {"reason": text("b_withdraw_reason")}
    case.call(CSM, "POST", f"/api/v1/flags/{flag}/withdraw", withdraw, 200)


def seed(case: Case) -> Case:
    """Incident I1 (triaged, linked to A) and I2 (awaiting triage, reported by the party for a
    councillor); flag A active with letter, decided appeal and review; flag B, protecting a
    councillor, withheld and withdrawn;
    the grant holder's live grant; the subject linked to a property; a decision D in the
    subject's decision log, decided by the party."""
    ids = case.ids
    ids["S"], ids["P"] = SUBJECT["ref"], PROPERTY
    ids["I1"] = _incident(case, OFFICER, "i1_narrative")
    # I2 happened to a councillor, whom the officer names.
    councillor = {"reporter_kind": "councillor", "reporter_name": text("i2_reporter_name")}
    ids["I2"] = _incident(case, PARTY_OFFICER, "i2_narrative", **councillor)
    triage = {
        "outcome": "refer_to_case_review",
        "considerations": {
            "channel": text("i1_channel"),
            "circumstances": text("i1_circumstances"),
            "known_to_council": True,
            "support_needs": text("i1_support"),
        },
    }
    case.call(SM, "POST", f"/api/v1/incidents/{ids['I1']}/triage", triage, 200)
    _flag_a(case)
    _flag_b(case)
    grant = {"reason_code": "home_visit", "reason_text": text("grant_reason")}
    path = f"/api/v1/subjects/{SUBJECT['kind']}/{SUBJECT['ref']}/access-grants"
    case.call(GRANT_HOLDER, "POST", path, grant, 201)
    link = {"property": PROPERTY}
    case.call(OFFICER, "POST", f"/api/v1/subjects/customer/{SUBJECT['ref']}/links", link, 201)
    decision = {
        "kind": "no_further_complaints",
        "matter": text("d_matter"),
        "reason": text("d_reason"),
        "decided_by": PARTY_OFFICER[1],
        "decided_on": "2026-03-03",
    }
    path = f"/api/v1/subjects/{SUBJECT['kind']}/{SUBJECT['ref']}/decisions"
    ids["DECISION"] = case.call(CSM, "POST", path, decision, 201)["id"]
    # A grant for another reason raises a privacy alert for the privacy officer's pages.
    other = {"reason_code": "other", "reason_text": "Checking the address for the repairs team"}
    grants = f"/api/v1/subjects/property/{PROPERTY}/access-grants"
    case.call(CSM, "POST", grants, other, 201)
    [alert] = case.call(AUDITOR, "GET", "/api/v1/alerts", None, 200)["alerts"]
    ids["ALERT"] = alert["id"]
    return case


def markers_in(*texts: str) -> Iterator[str]:
    """The fields whose markers occur in any of the texts."""
    for name, marker in MARKERS.items():
        if any(marker in t for t in texts):
            yield name
