"""Fixtures for the lifecycle: signed-in staff in each role, and flags at each stage."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

PROPOSAL: dict[str, Any] = {
    "subject": {"kind": "customer", "ref": "CRM-2001"},
    "level": "red",
    "categories": ["physical_violence"],
    "reason": "Struck an officer with a walking stick at reception.",
    "control_measures": "Meet only at the civic centre with two officers.",
    "restrictions": ["visits_in_pairs", {"code": "time_limited_calls", "note": "10 minutes"}],
    "responsible_manager": "u.resp",
    "reasonable_adjustments": "Uses a hearing aid: speak clearly, face to face.",
}

ASSESSMENT = {
    "severity": "high",
    "frequency": "single serious incident",
    "proportionality": "The least restriction that keeps staff safe.",
    "reasonable_adjustments": "Hearing aid noted; letters in large print.",
}


class Staff:
    """Bearer headers for named members of staff, signed in through /auth/launch."""

    def __init__(self, auth_headers: Callable[..., dict]) -> None:
        self._sign_in = auth_headers
        self.officer = auth_headers("case_officer", user="u.officer", name="Olive Officer")
        self.csm = auth_headers("customer_support_manager", user="u.csm", name="Cara Support")
        self.sm = auth_headers("senior_manager", user="u.sm", name="Sam Senior")
        self.hs = auth_headers("hs_manager", user="u.hs", name="Hal Safety")
        self.director = auth_headers("service_director", user="u.dir", name="Dee Director")
        self.agent = auth_headers("agent", user="u.agent", name="Ann Agent")

    def __call__(self, *roles: str, user: str, name: str | None = None) -> dict:
        return self._sign_in(*roles, user=user, name=name)


@pytest.fixture
def staff(auth_headers: Callable[..., dict]) -> Staff:
    return Staff(auth_headers)


class Cases:
    """Drives flags through the HTTP API the way staff would."""

    def __init__(self, client: FlaskClient, staff: Staff) -> None:
        self.client = client
        self.staff = staff

    def propose(self, headers: dict | None = None, **changes: Any) -> str:
        response = self.client.post(
            "/api/v1/flags", json=PROPOSAL | changes, headers=headers or self.staff.officer
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    def decide(self, flag_id: str, headers: dict, role: str, decision: str = "approve") -> Any:
        return self.client.post(
            f"/api/v1/flags/{flag_id}/panel-decisions",
            json={"role": role, "decision": decision, **ASSESSMENT},
            headers=headers,
        )

    def activate(self, flag_id: str) -> None:
        for headers, role in (
            (self.staff.csm, "customer_support_manager"),
            (self.staff.sm, "senior_manager"),
            (self.staff.hs, "hs_manager"),
        ):
            assert self.decide(flag_id, headers, role).status_code == 201

    def active(self, **changes: Any) -> str:
        flag_id = self.propose(**changes)
        self.activate(flag_id)
        return flag_id

    def notified(self, **changes: Any) -> str:
        flag_id = self.active(**changes)
        response = self.client.post(
            f"/api/v1/flags/{flag_id}/notice",
            json={"method": "letter", "recipient_name": "Mr T Example"},
            headers=self.staff.csm,
        )
        assert response.status_code == 201, response.get_json()
        return flag_id

    def assign_review(self, flag_id: str, *reviewers: str) -> None:
        """Name the flag's reviewers, as a Customer Support Manager other than them does."""
        lead = self.staff("customer_support_manager", user="u.csm.lead", name="Lee Lead")
        response = self.client.post(
            f"/api/v1/flags/{flag_id}/review-assignments",
            json={"reviewers": list(reviewers)},
            headers=lead,
        )
        assert response.status_code == 201, response.get_json()

    def read(self, flag_id: str, headers: dict | None = None) -> dict:
        response = self.client.get(f"/api/v1/flags/{flag_id}", headers=headers or self.staff.csm)
        assert response.status_code == 200, response.get_json()
        return response.get_json()


@pytest.fixture
def cases(client: FlaskClient, staff: Staff) -> Cases:
    return Cases(client, staff)


MARKS = {
    "reason": "RSNMARK-1 struck an officer",
    "control_measures": "CTLMARK-2 two officers",
    "reasonable_adjustments": "ADJMARK-3 hearing aid",
}
NARRATIVE = "NARMARK-4 said he knew where the officer parks"
CIRCUMSTANCES = "TRGMARK-5 bereavement"
GROUNDS = "GRDMARK-6 misreported"
RECIPIENT = "RCPMARK-7 Mr Example"
PROPORTION = "PRPMARK-8 least restriction"
ALL_MARKS = ("RSNMARK", "CTLMARK", "ADJMARK", "NARMARK", "TRGMARK", "GRDMARK", "RCPMARK", "PRPMARK")


def marked_case(client: FlaskClient, cases: Cases, staff: Staff) -> str:
    """An active, notified, appealed flag with a unique marker in each confidential field,
    an incident triaged, and a visiting officer's grant and details read."""
    incident = client.post(
        "/api/v1/incidents",
        json={
            "subject": PROPOSAL["subject"],
            "occurred_at": "2026-10-01T09:00:00Z",
            "channel": "phone",
            "behaviour_types": ["threats"],
            "narrative": NARRATIVE,
            "warning_given": False,
        },
        headers=staff.officer,
    ).get_json()["id"]
    triage = client.post(
        f"/api/v1/incidents/{incident}/triage",
        json={
            "outcome": "refer_to_case_review",
            "considerations": {
                "channel": "phone",
                "circumstances": CIRCUMSTANCES,
                "known_to_council": True,
                "support_needs": "none known",
            },
        },
        headers=staff.sm,
    )
    assert triage.status_code == 200, triage.get_json()
    flag_id = cases.propose(**MARKS, incident_ids=[incident])
    for headers, role in (
        (staff.csm, "customer_support_manager"),
        (staff.sm, "senior_manager"),
        (staff.hs, "hs_manager"),
    ):
        vote = ASSESSMENT | {"proportionality": PROPORTION}
        response = client.post(
            f"/api/v1/flags/{flag_id}/panel-decisions",
            json={"role": role, "decision": "approve", **vote},
            headers=headers,
        )
        assert response.status_code == 201
    notice = client.post(
        f"/api/v1/flags/{flag_id}/notice",
        json={"method": "letter", "recipient_name": RECIPIENT},
        headers=staff.csm,
    )
    assert notice.status_code == 201
    appeal = client.post(
        f"/api/v1/flags/{flag_id}/appeals", json={"grounds": GROUNDS}, headers=staff.officer
    )
    assert appeal.status_code == 201
    visitor = staff("visiting_officer", user="u.vo", name="Val Visitor")
    grant = client.post(
        "/api/v1/subjects/customer/CRM-2001/access-grants",
        json={"reason_code": "home_visit", "reason_text": "visit on Monday about the repair"},
        headers=visitor,
    )
    assert grant.status_code == 201, grant.get_json()
    assert client.get(f"/api/v1/flags/{flag_id}/details", headers=visitor).status_code == 200
    return flag_id
