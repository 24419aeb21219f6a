"""Proposal, panel, notice and letters through HTTP, including every way to get them wrong."""

from __future__ import annotations

from sqlalchemy import select

from sidecar.audit.models import AuditEntry
from sidecar.register.models import Subject
from sidecar.register.notices import long_date
from sidecar.register.status import banner_flags, crm_status
from tests.lifecycle.conftest import ASSESSMENT, PROPOSAL


def test_proposal_is_created_proposed_and_awaits_the_panel(cases, client, staff) -> None:
    response = client.post("/api/v1/flags", json=PROPOSAL, headers=staff.officer)
    assert response.status_code == 201
    body = response.get_json()
    assert body["state"] == "proposed"
    record = cases.read(body["id"])
    assert record["panel"]["awaiting"] == [
        "customer_support_manager",
        "senior_manager",
        "hs_manager",
    ]
    assert record["history"][0]["action"] == "proposed"
    assert record["history"][0]["actor"] == {"id": "u.officer", "name": "Olive Officer"}


def test_unknown_category_and_missing_fields_are_named(client, staff) -> None:
    bad = PROPOSAL | {"categories": ["physical_violence", "shouting"]}
    response = client.post("/api/v1/flags", json=bad, headers=staff.officer)
    assert response.status_code == 422
    assert "unknown category 'shouting'" in response.get_json()["detail"]
    missing = {k: v for k, v in PROPOSAL.items() if k != "reason"}
    response = client.post("/api/v1/flags", json=missing, headers=staff.officer)
    assert response.status_code == 422
    assert "reason" in response.get_json()["detail"]
    response = client.post(
        "/api/v1/flags", json=PROPOSAL | {"restrictions": ["no_phone"]}, headers=staff.officer
    )
    assert response.status_code == 422
    assert "unknown restriction 'no_phone'" in response.get_json()["detail"]
    response = client.post(
        "/api/v1/flags",
        json=PROPOSAL | {"subject": {"kind": "property", "ref": "1234567890123"}},
        headers=staff.officer,
    )
    assert response.status_code == 422
    assert "12 at most" in response.get_json()["detail"]


def test_an_agent_cannot_propose(client, staff) -> None:
    response = client.post("/api/v1/flags", json=PROPOSAL, headers=staff.agent)
    assert response.status_code == 403


def test_three_distinct_approvals_make_the_flag_active_and_change_the_banner(
    app, cases, staff
) -> None:
    flag_id = cases.propose()
    assert cases.decide(flag_id, staff.csm, "customer_support_manager").get_json()["awaiting"] == [
        "senior_manager",
        "hs_manager",
    ]
    assert cases.decide(flag_id, staff.sm, "senior_manager").get_json()["state"] == "proposed"
    final = cases.decide(flag_id, staff.hs, "hs_manager").get_json()
    assert final["state"] == "active"
    assert final["review_due"] is not None

    state = app.extensions["forewarn"]
    with state.database.transaction() as session:
        subject = session.scalars(select(Subject).where(Subject.ref == "CRM-2001")).one()
        banner = banner_flags(session, state.settings, subject)
        status = crm_status(session, state.settings, subject)
    assert subject.status_version >= 1
    assert banner[0]["level"] == "red"
    assert {"code": "time_limited_calls", "label": "Time-limited calls: 10 minutes"} in banner[0][
        "restrictions"
    ]
    assert banner[0]["appeal"] == {"pending": False, "handling_manager": None}
    assert status["level"] == "red"
    assert "reason" not in str(status).lower()
    assert "walking stick" not in str(status) + str(banner)


def test_a_member_cannot_approve_twice_or_in_two_roles(cases, client, staff) -> None:
    flag_id = cases.propose()
    both = staff("customer_support_manager", "senior_manager", user="u.both")
    assert cases.decide(flag_id, both, "customer_support_manager").status_code == 201
    again = cases.decide(flag_id, both, "customer_support_manager")
    assert again.status_code == 409
    second_role = cases.decide(flag_id, both, "senior_manager")
    assert second_role.status_code == 409
    assert "three distinct people" in second_role.get_json()["detail"]
    assert cases.read(flag_id)["state"] == "proposed"


def test_the_user_must_hold_the_panel_role(cases, staff) -> None:
    flag_id = cases.propose()
    response = cases.decide(flag_id, staff.sm, "hs_manager")
    assert response.status_code == 403
    assert "hs_manager" in response.get_json()["detail"]


def test_panel_assessment_fields_are_required(cases, client, staff) -> None:
    flag_id = cases.propose()
    body = {"role": "senior_manager", "decision": "approve", **ASSESSMENT}
    del body["proportionality"]
    response = client.post(f"/api/v1/flags/{flag_id}/panel-decisions", json=body, headers=staff.sm)
    assert response.status_code == 422
    assert "proportionality" in response.get_json()["detail"]


def test_a_rejection_closes_the_flag_with_the_decision_recorded(app, cases, staff) -> None:
    flag_id = cases.propose()
    assert cases.decide(flag_id, staff.csm, "customer_support_manager").status_code == 201
    rejected = cases.decide(flag_id, staff.sm, "senior_manager", "reject")
    assert rejected.get_json()["state"] == "rejected"
    record = cases.read(flag_id)
    assert record["history"][-1]["action"] == "panel_reject"
    assert record["panel"]["decisions"][-1]["decision"] == "reject"
    late = cases.decide(flag_id, staff.hs, "hs_manager")
    assert late.status_code == 409
    assert "allowed from rejected: none" in late.get_json()["detail"]
    with app.extensions["forewarn"].database.transaction() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.flag_id == flag_id)
        ).all()
    assert "flag.panel_reject" in actions


def test_wrong_transition_names_the_allowed_ones(cases, client, staff) -> None:
    flag_id = cases.propose()
    response = client.post(
        f"/api/v1/flags/{flag_id}/notice", json={"method": "letter"}, headers=staff.csm
    )
    assert response.status_code == 409
    problem = response.get_json()
    assert "allowed from proposed: panel_decision, withdraw" in problem["detail"]
    assert problem["allowed"] == ["panel_decision", "withdraw"]


def test_letter_is_rendered_signed_stored_and_sealed(app, cases, client, staff) -> None:
    flag_id = cases.active()
    response = client.post(
        f"/api/v1/flags/{flag_id}/notice",
        json={"method": "letter", "recipient_name": "Mr T Example", "recipient_address": "1 Road"},
        headers=staff.officer,
    )
    assert response.status_code == 201
    assert response.get_json()["letter"] == 1
    listing = client.get(f"/api/v1/flags/{flag_id}/letters", headers=staff.officer).get_json()
    assert listing["letters"][0]["signed_by"] == {"id": "u.csm", "name": "Cara Support"}
    letter = client.get(f"/api/v1/flags/{flag_id}/letters/1", headers=staff.officer)
    assert letter.status_code == 200
    assert letter.headers["Cache-Control"] == "no-store"
    text = letter.get_data(as_text=True)
    for expected in (
        "Struck an officer with a walking stick",
        "Visits in pairs",
        "Time-limited calls: 10 minutes",
        "Local Government and Social Care Ombudsman",
        "Cara Support",
        "within 21 days",
        "Mr T Example",
    ):
        assert expected in text
    assert long_date(cases.read(flag_id)["appeal_window_closes"]) in text
    again = client.post(
        f"/api/v1/flags/{flag_id}/notice", json={"method": "letter"}, headers=staff.csm
    )
    assert again.status_code == 409
    from sidecar.register.case_models import Letter

    with app.extensions["forewarn"].database.transaction() as session:
        stored = session.scalars(select(Letter).where(Letter.flag_id == flag_id)).one()
    assert "walking stick" not in stored.body


def test_letters_are_closed_to_the_uninvolved_without_letter_duties(cases, client, staff) -> None:
    flag_id = cases.notified()
    outsider = staff("hs_manager", user="u.other.hs")
    response = client.get(f"/api/v1/flags/{flag_id}/letters/1", headers=outsider)
    assert response.status_code == 403
    involved = client.get(f"/api/v1/flags/{flag_id}/letters/1", headers=staff.hs)
    assert involved.status_code == 200


def test_withheld_notice_needs_all_three_parts_and_a_real_director(cases, client, staff) -> None:
    flag_id = cases.active()
    url = f"/api/v1/flags/{flag_id}/notice"
    response = client.post(url, json={"method": "withheld", "reason": "x"}, headers=staff.csm)
    assert response.status_code == 422
    assert "legal_guidance_ref, director_permission_by" in response.get_json()["detail"]
    body = {
        "method": "withheld",
        "legal_guidance_ref": "LEGAL-2025-7",
        "director_permission_by": "u.sm",
        "reason": "Telling him risks an extreme reaction against the officer.",
    }
    not_director = client.post(url, json=body, headers=staff.csm)
    assert not_director.status_code == 422
    assert "not a service_director" in not_director.get_json()["detail"]
    response = client.post(url, json=body | {"director_permission_by": "u.dir"}, headers=staff.csm)
    assert response.status_code == 201
    assert response.get_json()["letter"] is None
    record = cases.read(flag_id)
    assert record["notice"]["method"] == "withheld"
    assert record["notice"]["director_permission_by"] == "u.dir"
    assert record["letters"] == []


def test_confidential_fields_only_for_those_related_to_the_case(cases, staff) -> None:
    flag_id = cases.notified()
    mine = cases.read(flag_id, staff.officer)
    assert mine["confidential_included"] is True
    assert mine["confidential"]["reason"].startswith("Struck an officer")
    other = cases.read(flag_id, staff("senior_manager", user="u.sm.elsewhere"))
    assert other["confidential_included"] is False
    assert "confidential" not in other
    assert "walking stick" not in str(other)
    assert [e["action"] for e in other["history"]][:2] == ["proposed", "panel_approve"]


def test_flag_history_is_complete_and_every_change_audited(app, cases, staff) -> None:
    flag_id = cases.notified()
    record = cases.read(flag_id)
    actions = [event["action"] for event in record["history"]]
    assert actions == [
        "proposed",
        "panel_approve",
        "panel_approve",
        "panel_approve",
        "notice_letter",
    ]
    assert record["history"][3]["from_state"] == "proposed"
    assert record["history"][3]["to_state"] == "active"
    with app.extensions["forewarn"].database.transaction() as session:
        audited = session.scalars(
            select(AuditEntry.action).where(AuditEntry.flag_id == flag_id).order_by(AuditEntry.seq)
        ).all()
    assert [a for a in audited if a != "flag.read"] == [f"flag.{a}" for a in actions]


def test_withdraw_and_then_nothing_more(cases, client, staff) -> None:
    flag_id = cases.active()
    url = f"/api/v1/flags/{flag_id}/withdraw"
    assert client.post(url, json={}, headers=staff.csm).status_code == 422
    response = client.post(url, json={"reason": "Incident was misattributed"}, headers=staff.csm)
    assert response.get_json()["state"] == "withdrawn"
    again = client.post(url, json={"reason": "again"}, headers=staff.csm)
    assert again.status_code == 409
    assert "allowed from withdrawn: none" in again.get_json()["detail"]
    assert client.post(url, json={"reason": "x"}, headers=staff.officer).status_code == 403


def test_unknown_flag_is_404(client, staff) -> None:
    assert client.get("/api/v1/flags/nope", headers=staff.csm).status_code == 404


def test_every_case_route_names_a_known_permission(app) -> None:
    from sidecar.api.endpoint import endpoints
    from sidecar.settings import PERMISSIONS

    case_routes = [spec for name, spec in endpoints(app) if name.startswith("cases.")]
    assert len(case_routes) >= 17
    assert all(spec.action in PERMISSIONS for spec in case_routes)


def test_sar_export_holds_the_flag_its_reasons_decisions_and_incidents(
    client, staff, cases, auth_headers
) -> None:
    incident = client.post(
        "/api/v1/incidents",
        json={
            "subject": PROPOSAL["subject"],
            "occurred_at": "2026-10-01T09:00:00Z",
            "channel": "phone",
            "behaviour_types": ["threats"],
            "narrative": "Said he knew where the officer parks.",
            "warning_given": False,
        },
        headers=staff.officer,
    )
    assert incident.status_code == 201
    flag_id = cases.notified()
    officer = auth_headers("privacy_officer", user="u.dpo", name="Dee Pio")

    export = client.post(
        "/api/v1/subjects/customer/CRM-2001/subject-access-export",
        json={"request_ref": "SAR-2026-001"},
        headers=officer,
    )
    assert export.status_code == 200
    assert export.headers["Cache-Control"] == "no-store"
    body = export.get_json()
    assert body["sections"] == ["flags", "incidents", "access_events"]
    [flag] = body["flags"]
    assert flag["id"] == flag_id and flag["state"] == "active"
    assert flag["confidential"]["reason"] == PROPOSAL["reason"]
    assert [d["decision"] for d in flag["panel"]["decisions"]] == ["approve"] * 3
    assert flag["letters"], "the decision letter sent to the person is part of the record"
    assert body["incidents"][0]["narrative"] == "Said he knew where the officer parks."
    # Staff identities are withheld by default (audit.sar_include_staff_identities).
    exported = export.get_data(as_text=True)
    for who in ("u.officer", "Olive Officer", "u.csm", "Cara Support", "u.resp"):
        assert who not in exported, f"{who} should be withheld"
    assert flag["panel"]["decisions"][0]["decided_by"] == {"id": "withheld", "name": "withheld"}


def test_adjustments_proposed_reach_the_banner_and_bad_ones_are_named(
    app, cases, client, staff
) -> None:
    too_long = client.post(
        "/api/v1/flags", json=PROPOSAL | {"adjustments": ["x" * 201]}, headers=staff.officer
    )
    assert too_long.status_code == 422
    assert "adjustments" in too_long.get_json()["detail"]
    flag_id = cases.active(adjustments=["  Contact by letter in large print  "])
    assert cases.read(flag_id)["adjustments"] == ["Contact by letter in large print"]
    state = app.extensions["forewarn"]
    with state.database.transaction() as session:
        subject = session.scalars(select(Subject).where(Subject.ref == "CRM-2001")).one()
        banner = banner_flags(session, state.settings, subject)
    assert banner[0]["adjustments"] == ["Contact by letter in large print"]
    # The detail behind the adjustment stays sealed.
    assert "hearing aid" not in str(banner).lower()
