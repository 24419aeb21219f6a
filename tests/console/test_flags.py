"""Proposing a flag and the panel's votes in the console, through the flag services."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select

from sidecar.audit.models import AuditEntry
from sidecar.register.case_models import FlagIncident, PanelDecision
from sidecar.register.models import Flag
from tests.console.conftest import csrf_token, error_summary, post_form, text

SOON = date.today() + timedelta(days=90)
PROPOSAL = {
    "level": "red",
    "categories": ["physical_violence", "threat_of_physical_abuse"],
    "restrictions": ["visits_in_pairs", "time_limited_calls"],
    "note_time_limited_calls": "10 minutes",
    "ends_time_limited_calls": [str(SOON.day), str(SOON.month), str(SOON.year)],
    "handling": "Two officers at every visit; calls limited to 10 minutes.",
    "reason": "Struck an officer with a walking stick at reception.",
    "control_measures": "Meet only at the civic centre with two officers.",
    "adjustments": "Contact by letter in large print\n\nAllow extra time on calls\n",
    "reasonable_adjustments": "Registered partially sighted.",
    "warning_given_on": ["2", "11", "2026"],
    "responsible_manager": "u.resp",
    "review_months": "6",
    "protects": ["staff"],
}
VOTE = {
    "decision": "approve",
    "severity": "high",
    "frequency": "single serious incident",
    "proportionality": "The least restriction that keeps staff safe.",
    "reasonable_adjustments": "Large print letters noted.",
}
PANEL = ("customer_support_manager", "senior_manager", "hs_manager")


def _count(app, model, *where) -> int:
    with app.extensions["forewarn"].database.transaction() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _incident(client, auth_headers) -> str:
    body = {
        "subject": {"kind": "customer", "ref": "CRM-2001"},
        "occurred_at": "2025-03-01T10:30:00Z",
        "channel": "in_person",
        "behaviour_types": ["physical_violence"],
        "narrative": "Struck the officer.",
        "warning_given": False,
    }
    reply = client.post("/api/v1/incidents", json=body, headers=auth_headers("case_officer"))
    return reply.get_json()["id"]


PROPOSE = "/console/subjects/customer/CRM-2001/propose"


def _propose(client, auth_headers, staff) -> str:
    incident_id = _incident(client, auth_headers)
    officer = staff("case_officer", user="u.officer")
    reply = post_form(officer, PROPOSE, PROPOSAL | {"incident_ids": [incident_id]})
    assert reply.status_code == 302, error_summary(reply)
    return _only_flag(client.application)


def _only_flag(app) -> str:
    with app.extensions["forewarn"].database.transaction() as session:
        [flag] = session.scalars(select(Flag))
        return flag.id


def test_a_case_officer_proposes_a_flag_from_the_subjects_incidents(
    app, client, auth_headers, staff
):
    incident_id = _incident(client, auth_headers)
    officer = staff("case_officer", user="u.officer")
    page = officer.get(PROPOSE)
    assert incident_id in page.get_data(as_text=True)
    assert "Struck the officer." not in text(page)
    reply = officer.post(
        PROPOSE,
        data={
            "csrf_token": csrf_token(page.get_data(as_text=True)),
            **PROPOSAL,
            "incident_ids": [incident_id],
        },
    )
    assert reply.status_code == 302
    assert reply.headers["Location"] == "/console/subjects/customer/CRM-2001"
    assert "The flag is proposed" in text(officer.get(reply.headers["Location"]))
    with app.extensions["forewarn"].database.transaction() as session:
        [flag] = session.scalars(select(Flag))
        assert (flag.state, flag.level, flag.review_months) == ("proposed", "red", 6)
        assert flag.categories == ["physical_violence", "threat_of_physical_abuse"]
        assert flag.restrictions == [
            {"code": "visits_in_pairs", "note": "", "ends_on": None},
            {"code": "time_limited_calls", "note": "10 minutes", "ends_on": SOON.isoformat()},
        ]
        assert flag.responsible_manager == "u.resp"
        assert flag.proposed_by == "u.officer"
        assert flag.adjustments == ["Contact by letter in large print", "Allow extra time on calls"]
        assert flag.warning_given_on == date(2026, 11, 2)
        assert "partially sighted" not in str(flag.reasonable_adjustments)
    assert _count(app, FlagIncident) == 1


def test_the_form_offers_every_catalogue_entry_and_the_default_review_period(settings, staff):
    html = staff("case_officer").get(PROPOSE).get_data(as_text=True)
    for name in ("levels", "categories", "restrictions"):
        for code in getattr(settings.catalogue, name):
            assert f'value="{code}"' in html, code
    assert f'value="{settings.policy.review_period_months}"' in html


def test_bad_input_lists_the_problems_keeps_the_text_and_proposes_nothing(app, staff) -> None:
    past = date.today() - timedelta(days=1)
    reply = post_form(
        staff("case_officer"),
        PROPOSE,
        {
            "restrictions": ["time_limited_calls"],
            "ends_time_limited_calls": [str(past.day), str(past.month), str(past.year)],
            "reason": "Kept as typed.",
            "responsible_manager": "",
            "review_months": "40",
            "protects": ["staff"],
        },
    )
    assert reply.status_code == 422
    assert error_summary(reply) == [
        "Choose the flag's level",
        "Select at least one category",
        "Describe the control measures",
        "Enter the responsible manager's user id",
        "The review period must be 1 to 36 months",
        "The end date must be in the future",
    ]
    assert "Kept as typed." in reply.get_data(as_text=True)
    assert _count(app, Flag) == 0


def test_a_flag_protecting_councillors_names_them_only_where_details_open(
    app, client, auth_headers, staff
) -> None:
    officer = staff("case_officer", user="u.officer")
    protecting = {"protects": ["staff", "councillor"], "protected_people": "Cllr Jo Ward"}
    reply = post_form(officer, PROPOSE, PROPOSAL | protecting)
    assert reply.status_code == 302, error_summary(reply)
    flag_id = _only_flag(app)
    with app.extensions["forewarn"].database.transaction() as session:
        flag = session.get(Flag, flag_id)
        assert flag.protects == ["staff", "councillor"]
        assert "Jo Ward" not in str(flag.protected_people)  # sealed at rest
    # The API gives the proposer what the form recorded.
    record = client.get(
        f"/api/v1/flags/{flag_id}", headers=auth_headers("case_officer", user="u.officer")
    ).get_json()
    assert [p["label"] for p in record["protects"]] == ["Staff", "Councillors"]
    assert record["confidential"]["protected_people"] == "Cllr Jo Ward"
    # The subject page, read without details, says whom but not who.
    page = text(officer.get("/console/subjects/customer/CRM-2001"))
    assert "Protects Staff, Councillors" in page
    assert "Jo Ward" not in page
    # On the panel page the responsible manager, who takes part, reads the name (audited);
    # a panel member with no part yet does not.
    panel = f"/console/flags/{flag_id}/panel"
    responsible = text(staff("senior_manager", user="u.resp").get(panel))
    assert "Councillors or contractors protected Cllr Jo Ward" in responsible
    unrelated = text(staff("hs_manager", user="u.hs").get(panel))
    assert "Protects Staff, Councillors" in unrelated
    assert "Jo Ward" not in unrelated
    with app.extensions["forewarn"].database.transaction() as session:
        query = select(AuditEntry).where(AuditEntry.action == "flag.read")
        reasons = {e.actor_id: e.outcome_reason for e in session.scalars(query)}
    assert reasons["u.resp"].startswith("record with confidential details")
    assert reasons["u.hs"] == "record without confidential details"


def test_whom_a_flag_protects_is_refused_when_wrong_keeping_what_was_typed(app, staff) -> None:
    officer = staff("case_officer", user="u.officer")
    nobody = post_form(officer, PROPOSE, PROPOSAL | {"protects": []})
    assert nobody.status_code == 422
    assert error_summary(nobody) == ["Select who the flag protects"]
    named_staff = post_form(
        officer, PROPOSE, PROPOSAL | {"protects": ["staff"], "protected_people": "Sam Staff"}
    )
    assert named_staff.status_code == 422
    assert error_summary(named_staff) == [
        "Protects: names are given only for councillors or contractors (staff are known by "
        "their sign-in)"
    ]
    html = named_staff.get_data(as_text=True)
    assert "Sam Staff" in html and 'href="#protected_people"' in html
    assert "Struck an officer with a walking stick" in html  # the rest as typed
    unknown = post_form(officer, PROPOSE, PROPOSAL | {"protects": ["mayor"]})
    assert unknown.status_code == 422
    assert "not a valid choice" in " ".join(error_summary(unknown)).lower()
    assert _count(app, Flag) == 0


def test_the_form_protects_staff_unless_told_otherwise(staff) -> None:
    html = staff("case_officer").get(PROPOSE).get_data(as_text=True)
    for code in ("staff", "councillor", "contractor"):
        assert f'name="protects" type="checkbox" value="{code}"' in html
    assert 'value="staff" checked' in html
    assert 'value="councillor" checked' not in html


def test_the_panel_fills_up_role_by_role_until_the_flag_is_active(app, client, auth_headers, staff):
    flag_id = _propose(client, auth_headers, staff)
    path = f"/console/flags/{flag_id}/panel"
    for n, role in enumerate(PANEL):
        member = staff(role, user=f"u.{role}", name=f"Member {n}")
        assert "Proposals awaiting your vote: 1" in text(member.get("/"))
        reply = post_form(member, path, VOTE | {"role": role})
        assert reply.status_code == 302, error_summary(reply)
        page = text(member.get(path))
        assert "span>" not in page  # the wrapping markup is markup, not text
        assert page.count("Approved") == n + 1
        assert page.count("Awaiting") == len(PANEL) - n - 1
        assert f"Member {n}" in page
        assert "Proposals awaiting your vote: 0" in text(member.get("/"))
    assert "All three panel roles approved: the flag is active" in page
    assert _count(app, Flag, Flag.state == "active") == 1


def test_one_person_holding_two_panel_roles_votes_once(app, client, auth_headers, staff) -> None:
    flag_id = _propose(client, auth_headers, staff)
    both = staff("customer_support_manager", "senior_manager", user="u.both")
    path = f"/console/flags/{flag_id}/panel"
    assert post_form(both, path, VOTE | {"role": "customer_support_manager"}).status_code == 302
    page = both.get(path)
    assert "You have no vote left on this proposal" in text(page)
    again = both.post(
        path,
        data={
            "csrf_token": csrf_token(page.get_data(as_text=True)),
            **VOTE,
            "role": "senior_manager",
        },
    )
    assert again.status_code == 422
    assert "the panel is three distinct people" in " ".join(error_summary(again))
    assert _count(app, PanelDecision) == 1


def test_a_vote_without_the_assessment_is_refused_and_records_nothing(
    app, client, auth_headers, staff
):
    flag_id = _propose(client, auth_headers, staff)
    reply = post_form(
        staff("hs_manager"),
        f"/console/flags/{flag_id}/panel",
        {"role": "hs_manager", "decision": "approve"},
    )
    assert reply.status_code == 422
    assert error_summary(reply) == [
        "Record the severity",
        "Record the frequency",
        "Record why it is proportionate",
        "Record the reasonable adjustments considered",
    ]
    assert _count(app, PanelDecision) == 0


def test_the_panel_page_reads_the_record_as_the_api_does(app, client, auth_headers, staff) -> None:
    flag_id = _propose(client, auth_headers, staff)
    staff("hs_manager", user="u.hs").get(f"/console/flags/{flag_id}/panel")
    client.get(f"/api/v1/flags/{flag_id}", headers=auth_headers("hs_manager", user="u.hs"))
    with app.extensions["forewarn"].database.transaction() as session:
        query = select(AuditEntry).where(AuditEntry.action == "flag.read")
        console, api = [(e.actor_id, e.flag_id, e.outcome_reason) for e in session.scalars(query)]
    assert console == api == ("u.hs", flag_id, "record without confidential details")


def test_a_role_off_the_panel_cannot_open_the_vote(client, auth_headers, staff) -> None:
    flag_id = _propose(client, auth_headers, staff)
    assert staff("case_officer").get(f"/console/flags/{flag_id}/panel").status_code == 403
    assert staff("legal").get("/console/panel").status_code == 403
