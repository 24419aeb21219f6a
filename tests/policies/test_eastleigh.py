"""Eastleigh Borough Council's customer behaviour policy, rule by rule, through the API.

Each test name is the policy's own words (paragraph numbers from the policy in
shared/policies/002); each test drives the HTTP API as the council's staff would.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sidecar.audit.models import AuditEntry
from sidecar.register.case_models import ContactDecision
from sidecar.register.models import Incident
from tests.identity.test_routes import INCIDENT, TRIAGE
from tests.lifecycle.conftest import PROPOSAL

LOG = "/api/v1/subjects/customer/{}/decisions"
PERSISTENT = {
    "kind": "no_further_complaints",
    "matter": "Complaint 2025/118 about the bin collection",
    "reason": "Investigated at all three stages; the new letters add nothing new.",
    "decided_by": "u.csm",
    "decided_on": "2026-11-20",
}


def _entries(app, action: str) -> list[AuditEntry]:
    with app.extensions["forewarn"].database.transaction() as session:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
        return list(session.scalars(query))


def _signed_in(client, staff) -> None:
    # The directory knows whoever has signed in; a decision names someone it knows.
    client.get("/auth/session", headers=staff.csm)


def test_33_records_when_a_decision_is_taken_not_to_put_a_further_complaint_through_the_complaint_procedure(  # noqa: E501
    app, client, staff
) -> None:
    _signed_in(client, staff)
    reply = client.post(LOG.format("CRM-3001"), json=PERSISTENT, headers=staff.csm)
    assert reply.status_code == 201, reply.get_json()
    log = client.get(LOG.format("CRM-3001"), headers=staff.csm).get_json()
    [entry] = log["decisions"]
    assert entry["kind_label"] == "Further complaints on the same matter not processed"
    assert entry["decided_by"] == {"id": "u.csm", "name": "Cara Support"}
    assert entry["decided_on"] == "2026-11-20"
    assert entry["reason"] == PERSISTENT["reason"]
    assert entry["matter"] == PERSISTENT["matter"]
    with app.extensions["forewarn"].database.transaction() as session:
        [row] = session.scalars(select(ContactDecision))
        # Sealed at rest like a flag's reason.
        assert "bin collection" not in (row.matter or "")
        assert "three stages" not in (row.reason or "")


def test_33_records_when_a_decision_is_taken_not_to_respond_to_further_correspondence(
    client, staff
) -> None:
    _signed_in(client, staff)
    body = PERSISTENT | {"kind": "no_reply", "matter": "Letters about the 2025 parking permit"}
    assert client.post(LOG.format("CRM-3002"), json=body, headers=staff.csm).status_code == 201
    [entry] = client.get(LOG.format("CRM-3002"), headers=staff.csm).get_json()["decisions"]
    assert entry["kind_label"] == "Further correspondence on the same matter not answered"


def test_33_records_when_a_decision_is_taken_to_restrict_correspondence_to_a_single_point_of_contact(  # noqa: E501
    client, staff
) -> None:
    _signed_in(client, staff)
    body = PERSISTENT | {"kind": "single_point_of_contact"}
    refused = client.post(LOG.format("CRM-3003"), json=body, headers=staff.csm)
    assert refused.status_code == 422
    assert "name the single point of contact" in refused.get_json()["detail"]
    body["contact"] = "Jo Lane, Customer Services, 01234 567890"
    assert client.post(LOG.format("CRM-3003"), json=body, headers=staff.csm).status_code == 201
    [entry] = client.get(LOG.format("CRM-3003"), headers=staff.csm).get_json()["decisions"]
    assert entry["contact"] == "Jo Lane, Customer Services, 01234 567890"


def test_33_records_when_a_decision_is_taken_to_make_an_exception_to_the_policy_after_it_has_been_applied(  # noqa: E501
    cases, client, staff
) -> None:
    _signed_in(client, staff)
    flag_id = cases.active()
    exception = {
        "kind": "policy_exception",
        "reason": "A home visit for the care assessment, with two officers.",
        "decided_by": "u.csm",
        "decided_on": "2026-11-21",
    }
    missing = client.post(LOG.format("CRM-2001"), json=exception, headers=staff.csm)
    assert missing.status_code == 422
    assert "an exception is made to an applied flag" in missing.get_json()["detail"]
    other = cases.propose(subject={"kind": "customer", "ref": "CRM-9"})
    wrong = client.post(
        LOG.format("CRM-2001"), json=exception | {"flag_id": other}, headers=staff.csm
    )
    assert wrong.status_code == 422
    made = client.post(
        LOG.format("CRM-2001"), json=exception | {"flag_id": flag_id}, headers=staff.csm
    )
    assert made.status_code == 201
    [entry] = client.get(LOG.format("CRM-2001"), headers=staff.csm).get_json()["decisions"]
    assert (entry["kind"], entry["flag_id"]) == ("policy_exception", flag_id)


def test_33_the_decision_taken_and_by_whom_is_kept_and_a_lifted_decision_stays_in_the_record(
    client, staff
) -> None:
    _signed_in(client, staff)
    decision_id = client.post(
        LOG.format("CRM-3004"), json=PERSISTENT, headers=staff.csm
    ).get_json()["id"]
    lift = {"reason": "A new matter was raised.", "decided_by": "u.csm", "lifted_on": "2026-11-25"}
    url = f"/api/v1/decisions/{decision_id}/lift"
    assert client.post(url, json=lift, headers=staff.csm).status_code == 200
    assert client.post(url, json=lift, headers=staff.csm).status_code == 409
    [entry] = client.get(LOG.format("CRM-3004"), headers=staff.csm).get_json()["decisions"]
    assert entry["lifted"] == {
        "on": "2026-11-25",
        "by": {"id": "u.csm", "name": "Cara Support"},
        "reason": "A new matter was raised.",
    }


def test_33_full_details_of_the_reasons_are_restricted_to_those_with_a_specific_need(
    app, client, staff
) -> None:
    _signed_in(client, staff)
    client.post(LOG.format("CRM-3005"), json=PERSISTENT, headers=staff.csm)
    # The Head of Legal and a director see that decisions were taken, by whom and when...
    for headers in (staff("legal", user="u.legal"), staff.director):
        log = client.get(LOG.format("CRM-3005"), headers=headers).get_json()
        assert log["reasons_shown"] is False
        [entry] = log["decisions"]
        assert entry["decided_by"]["id"] == "u.csm"
        assert "matter" not in entry and "reason" not in entry
        assert "bin collection" not in str(log) and "three stages" not in str(log)
    # ...and a director with a recorded business need reads the reasons, audited as such.
    need = {"reason_code": "case_work", "reason_text": "Answering the customer's MP this week"}
    grants = "/api/v1/subjects/customer/CRM-3005/access-grants"
    assert client.post(grants, json=need, headers=staff.director).status_code == 201
    log = client.get(LOG.format("CRM-3005"), headers=staff.director).get_json()
    assert log["decisions"][0]["reason"] == PERSISTENT["reason"]
    reads = _entries(app, "decision.read")
    assert [e.outcome_reason.split(" (")[0] for e in reads] == [
        "decision log without reasons",
        "decision log without reasons",
        "decision log with reasons",
    ]
    # Staff who do not handle complaints do not read the log at all.
    assert client.get(LOG.format("CRM-3005"), headers=staff.agent).status_code == 403


def test_33_the_records_are_maintained_by_the_customer_support_manager(client, staff) -> None:
    _signed_in(client, staff)
    for headers in (staff.officer, staff.director, staff.sm):
        assert (
            client.post(LOG.format("CRM-3006"), json=PERSISTENT, headers=headers).status_code == 403
        )


def test_a_decision_names_a_known_member_of_staff_a_real_kind_and_a_past_date(
    app, client, staff
) -> None:
    _signed_in(client, staff)
    bad = PERSISTENT | {"kind": "ban", "decided_by": "u.nobody", "decided_on": "2999-01-01"}
    reply = client.post(LOG.format("CRM-3007"), json=bad, headers=staff.csm)
    assert reply.status_code == 422
    detail = reply.get_json()["detail"]
    assert "kind must be one of" in detail
    assert "'u.nobody' is not in the staff directory" in detail
    assert "decided_on must be between" in detail
    with app.extensions["forewarn"].database.transaction() as session:
        assert session.scalars(select(ContactDecision)).first() is None


def test_31_a_final_review_of_the_case_will_be_undertaken_by_a_service_director_with_no_prior_involvement_in_the_case(  # noqa: E501
    cases, client, staff
) -> None:
    # People who hold the director's role besides another, each with one part in the case.
    reporter = staff("service_director", "customer_support_manager", user="u.reporter")
    triager = staff("service_director", "senior_manager", user="u.triager")
    lodger = staff("service_director", "case_officer", user="u.lodger")
    incident = client.post("/api/v1/incidents", json=INCIDENT, headers=reporter).get_json()["id"]
    triaged = client.post(f"/api/v1/incidents/{incident}/triage", json=TRIAGE, headers=triager)
    assert triaged.status_code == 200, triaged.get_json()
    flag_id = cases.notified(incident_ids=[incident])
    appeal = client.post(
        f"/api/v1/flags/{flag_id}/appeals",
        json={"grounds": "It was a misunderstanding."},
        headers=lodger,
    )
    assert appeal.status_code == 201, appeal.get_json()
    url = f"/api/v1/flags/{flag_id}/appeals/{appeal.get_json()['id']}/decision"
    decision = {"outcome": "upheld", "reasons": "The threat was real and recent."}
    for headers, part in (
        (reporter, "incident reporter"),
        (triager, "triaging manager"),
        (lodger, "appeal lodger"),
    ):
        refused = client.post(url, json=decision, headers=headers)
        assert refused.status_code == 403
        assert part in refused.get_json()["detail"]
    fresh = staff("service_director", user="u.fresh", name="Fay Fresh")
    assert client.post(url, json=decision, headers=fresh).status_code == 200


def test_31_a_part_in_the_incidents_is_not_of_itself_a_need_to_read_the_flags_reasons(
    cases, client, staff
) -> None:
    reporter = staff("customer_support_manager", user="u.reporter2")
    incident = client.post("/api/v1/incidents", json=INCIDENT, headers=reporter).get_json()["id"]
    flag_id = cases.active(incident_ids=[incident])
    assert client.get(f"/api/v1/flags/{flag_id}/details", headers=reporter).status_code == 403


def test_26_reporting_the_matter_to_the_police_or_taking_legal_action_is_recorded_with_its_reference(  # noqa: E501
    app, client, staff
) -> None:
    incident = client.post("/api/v1/incidents", json=INCIDENT, headers=staff.csm).get_json()["id"]
    url = f"/api/v1/incidents/{incident}/triage"
    police = TRIAGE | {"outcome": "refer_to_police"}
    missing = client.post(url, json=police, headers=staff.sm)
    assert missing.status_code == 422
    assert "give the police crime reference" in missing.get_json()["detail"]
    stray = client.post(url, json=TRIAGE | {"reference": "CR/1"}, headers=staff.sm)
    assert stray.status_code == 422
    done = client.post(url, json=police | {"reference": "CR/2026/0412"}, headers=staff.sm)
    assert done.status_code == 200
    assert done.get_json()["triage"] == "refer_to_police"
    register = client.get(
        "/api/v1/incidents?kind=customer&ref=CRM-2001", headers=staff.sm
    ).get_json()
    [shown] = register["incidents"]
    assert shown["triage"]["outcome"] == "refer_to_police"
    assert shown["triage"]["reference"] == "CR/2026/0412"
    with app.extensions["forewarn"].database.transaction() as session:
        row = session.get(Incident, incident)
        assert "CR/2026/0412" not in (row.triage_reference or "")
    legal = TRIAGE | {"outcome": "legal_action", "reference": "LEGAL/77"}
    second = client.post("/api/v1/incidents", json=INCIDENT, headers=staff.csm).get_json()["id"]
    assert (
        client.post(f"/api/v1/incidents/{second}/triage", json=legal, headers=staff.sm).status_code
        == 200
    )


# With the council's own settings, config/examples/eastleigh.toml ----------------------------

FLAGS = "/api/v1/flags"
REVIEW = {"outcome": "continue", "notes": "Two further incidents this year; keep the flag."}


class Eastleigh:
    def __init__(self, council) -> None:
        self.borough = council("eastleigh")
        sign_in = self.borough.sign_in
        self.officer = sign_in("case_officer", user="u.officer", name="Olive Officer")
        self.csm = sign_in("customer_support_manager", user="u.csm", name="Cara Support")
        self.lead = sign_in("customer_support_manager", user="u.lead", name="Lee Lead")
        self.sm = sign_in("senior_manager", user="u.sm", name="Sam Senior")
        self.hs = sign_in("hs_manager", user="u.hs", name="Hal Safety")

    def active(self) -> str:
        flag_id = self.borough.propose(self.officer)
        for headers, role in (
            (self.csm, "customer_support_manager"),
            (self.sm, "senior_manager"),
            (self.hs, "hs_manager"),
        ):
            assert self.borough.decide(flag_id, headers, role).status_code == 201
        return flag_id

    def assign(self, flag_id: str, *reviewers: str) -> None:
        url = f"{FLAGS}/{flag_id}/review-assignments"
        reply = self.borough.post(url, {"reviewers": list(reviewers)}, self.lead)
        assert reply.status_code == 201, reply.get_json()


@pytest.fixture
def borough(council) -> Eastleigh:
    return Eastleigh(council)


def test_27_the_case_review_team_will_comprise_of_the_customer_support_manager_a_relevant_senior_manager_and_the_corporate_health_and_safety_manager(  # noqa: E501
    borough,
) -> None:
    flag_id = borough.borough.propose(borough.officer)
    borough.borough.decide(flag_id, borough.csm, "customer_support_manager")
    two = borough.borough.decide(flag_id, borough.sm, "senior_manager").get_json()
    assert two["state"] == "proposed" and two["awaiting"] == ["hs_manager"]
    three = borough.borough.decide(flag_id, borough.hs, "hs_manager").get_json()
    assert three["state"] == "active"


def test_34_all_flags_will_be_reviewed_annually_by_the_customer_support_manager_and_the_corporate_health_and_safety_manager_and_recommendations_agreed_with_the_relevant_service_senior_manager(  # noqa: E501
    borough,
) -> None:
    flag_id = borough.active()
    borough.assign(flag_id, "u.csm", "u.hs")
    url = f"{FLAGS}/{flag_id}/reviews"
    # The Health and Safety Manager records the review: the settings give them review.record.
    unagreed = borough.borough.post(url, REVIEW, borough.hs)
    assert unagreed.status_code == 422
    assert "agreed_with: name the Service Senior Manager" in unagreed.get_json()["detail"]
    not_a_manager = borough.borough.post(url, REVIEW | {"agreed_with": "u.officer"}, borough.hs)
    assert not_a_manager.status_code == 422
    reviewed = borough.borough.post(url, REVIEW | {"agreed_with": "u.sm"}, borough.hs)
    assert reviewed.status_code == 201, reviewed.get_json()
    parties = [(p["id"], p["part"]) for p in reviewed.get_json()["parties"]]
    assert parties == [("u.csm", "reviewer"), ("u.hs", "reviewer"), ("u.sm", "agreed_with")]
    record = borough.borough.client.get(f"{FLAGS}/{flag_id}", headers=borough.csm).get_json()
    assert [p["name"] for p in record["reviews"][0]["parties"]] == [
        "Cara Support",
        "Hal Safety",
        "Sam Senior",
    ]
    assert "by Cara Support and Hal Safety, agreed with Sam Senior" in record["history"][-1]["why"]


def test_34_a_review_without_the_health_and_safety_manager_is_not_the_annual_review(
    borough,
) -> None:
    flag_id = borough.active()
    borough.assign(flag_id, "u.csm")
    alone = borough.borough.post(
        f"{FLAGS}/{flag_id}/reviews", REVIEW | {"agreed_with": "u.sm"}, borough.csm
    )
    assert alone.status_code == 422
    assert "none assigned is a Health and Safety Manager" in alone.get_json()["detail"]


def test_4_the_unacceptable_customer_behaviour_we_will_not_tolerate_towards_staff_councillors_and_contractors(  # noqa: E501
    borough,
) -> None:
    incident = INCIDENT | {"reporter_kind": "contractor", "reporter_name": "Pat Plumber, Acme"}
    reported = borough.borough.post("/api/v1/incidents", incident, borough.officer)
    assert reported.status_code == 201, reported.get_json()
    register = borough.borough.client.get(
        "/api/v1/incidents?kind=customer&ref=CRM-2001", headers=borough.officer
    ).get_json()
    # The officer who recorded it takes part in its case and reads the contractor's name.
    assert register["incidents"][0]["reporter"] == {
        "kind": "contractor",
        "label": "Contractor",
        "name": "Pat Plumber, Acme",
    }
    other = borough.borough.sign_in("customer_support_manager", user="u.csm.other")
    theirs = borough.borough.client.get(
        "/api/v1/incidents?kind=customer&ref=CRM-2001", headers=other
    )
    assert theirs.get_json()["incidents"][0]["reporter"]["name"] is None
    assert "Pat Plumber" not in theirs.get_data(as_text=True)
    unknown = borough.borough.post(
        "/api/v1/incidents", INCIDENT | {"reporter_kind": "visitor"}, borough.officer
    )
    assert unknown.status_code == 422
    flag_id = borough.borough.propose(
        borough.officer, protects=["contractor"], protected_people="Acme Plumbing's fitters"
    )
    record = borough.borough.client.get(f"{FLAGS}/{flag_id}", headers=borough.officer).get_json()
    assert record["protects"] == [{"kind": "contractor", "label": "Contractors"}]
    assert record["confidential"]["protected_people"] == "Acme Plumbing's fitters"
    nobody = borough.borough.post("/api/v1/flags", PROPOSAL | {"protects": []}, borough.officer)
    assert nobody.status_code == 422
