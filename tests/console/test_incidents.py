"""Recording incidents in the console, and managers' triage queue and decisions."""

from __future__ import annotations

import re
from datetime import date, timedelta

from sqlalchemy import func, select

from sidecar.audit.models import AuditEntry
from sidecar.register.models import Incident
from tests.console.conftest import csrf_token, error_summary, post_form, text

INCIDENT = {
    "kind": "customer",
    "ref": "CRM-2001",
    "occurred_on": ["1", "3", "2025"],
    "occurred_time": "10:30",
    "channel": "phone",
    "behaviour_types": ["threats", "unreasonable_demands"],
    "narrative": "Said he would wait outside the office for the officer.",
    "warning_given": "yes",
    "reporter_kind": "staff",
}
TRIAGE = {
    "outcome": "refer_to_case_review",
    "channel": "telephone, twice this week",
    "circumstances": "Housing repair refused",
    "known_to_council": "yes",
    "support_needs": "none known",
}


def _count(app, model, *where) -> int:
    with app.extensions["forewarn"].database.transaction() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _audit(app, action: str) -> list[AuditEntry]:
    with app.extensions["forewarn"].database.transaction() as session:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
        return list(session.scalars(query))


def _record(client, **changes):
    return post_form(client, "/console/incidents/new", INCIDENT | changes)


def test_an_agent_records_an_incident_and_lands_on_the_home_page(app, staff) -> None:
    agent = staff("agent", user="u.agent", name="Ann Agent")
    reply = _record(agent)
    assert reply.status_code == 302
    assert reply.headers["Location"] == "/"
    assert "Incident recorded for customer CRM-2001" in text(agent.get("/"))
    with app.extensions["forewarn"].database.transaction() as session:
        [incident] = session.scalars(select(Incident))
        assert incident.reported_by == "u.agent"
        assert incident.channel == "phone"
        assert sorted(incident.behaviour_types) == ["threats", "unreasonable_demands"]
        assert incident.occurred_at.isoformat() == "2025-03-01T10:30:00+00:00"
    [entry] = _audit(app, "incident.create")
    assert (entry.actor_id, entry.subject_ref) == ("u.agent", "CRM-2001")


def test_a_case_officer_goes_on_to_the_subject_page(staff) -> None:
    officer = staff("case_officer")
    reply = _record(officer)
    assert reply.headers["Location"] == "/console/subjects/customer/CRM-2001"


def test_bad_input_lists_every_problem_keeps_what_was_typed_and_writes_nothing(app, staff):
    agent = staff("agent")
    reply = _record(
        agent,
        ref="CRM 2001",
        occurred_on=["31", "2", "2025"],
        occurred_time="25:30",
        channel="",
        behaviour_types=[],
        narrative="",
    )
    assert reply.status_code == 422
    assert error_summary(reply) == [
        "Enter the CRM reference as letters, digits and . _ : / - only, starting with a "
        "letter or digit, for example CRM-1001",
        "The date it happened must be a real date, for example 27 3 2026",
        "Enter the time in 24-hour time, for example 14:30",
        "Choose how it happened",
        "Select at least one kind of behaviour",
        "Describe what happened",
    ]
    html = reply.get_data(as_text=True)
    assert 'value="CRM 2001"' in html
    assert 'value="25:30"' in html
    assert 'href="#occurred_on-day"' in html
    assert text(reply).startswith("Error: Record an incident")
    assert _count(app, Incident) == 0
    assert _audit(app, "incident.create") == []


def test_an_incident_recorded_for_a_councillor_names_them_only_where_details_open(
    app, client, auth_headers, staff
) -> None:
    officer = staff("case_officer", user="u.officer", name="Olive Officer")
    reply = _record(officer, reporter_kind="councillor", reporter_name="Cllr Jo Ward")
    assert reply.status_code == 302, error_summary(reply)
    with app.extensions["forewarn"].database.transaction() as session:
        [incident] = session.scalars(select(Incident))
        assert incident.reporter_kind == "councillor"
        assert "Jo Ward" not in str(incident.reporter_name)  # sealed at rest
    # The API gives the reporter, who took part, the name the form recorded.
    register = client.get(
        "/api/v1/incidents?kind=customer&ref=CRM-2001",
        headers=auth_headers("case_officer", user="u.officer"),
    ).get_json()
    assert [i["reporter"] for i in register["incidents"]] == [
        {"kind": "councillor", "label": "Councillor", "name": "Cllr Jo Ward"}
    ]
    page = text(officer.get("/console/subjects/customer/CRM-2001"))
    assert "It happened to a councillor, Cllr Jo Ward." in page
    # Another case officer, with no part in the case, reads whom but not the name.
    other = text(staff("case_officer", user="u.other").get("/console/subjects/customer/CRM-2001"))
    assert "It happened to a councillor." in other
    assert "Jo Ward" not in other
    # The manager triaging it reads the name with the narrative, audited as it is.
    manager = staff("customer_support_manager", user="u.csm")
    triage = text(manager.get(f"/console/incidents/{incident.id}/triage"))
    assert "It happened to Councillor, Cllr Jo Ward" in triage
    reads = _audit(app, "incident.read")
    assert [(e.actor_id, e.outcome) for e in reads][-1] == ("u.csm", "allowed")


def test_a_name_for_staff_or_an_unknown_kind_is_refused_keeping_what_was_typed(app, staff):
    agent = staff("agent")
    named = _record(agent, reporter_kind="staff", reporter_name="Someone Else")
    assert named.status_code == 422
    assert error_summary(named) == [
        "Reporter_kind: names are given only for councillors or contractors (staff are known "
        "by their sign-in)"
    ]
    html = named.get_data(as_text=True)
    assert 'value="Someone Else"' in html
    assert 'href="#reporter_name"' in html
    unknown = _record(agent, reporter_kind="mayor", reporter_name="Someone Else")
    assert unknown.status_code == 422
    assert error_summary(unknown) == ["Not a valid choice."]
    missing = post_form(agent, "/console/incidents/new", {**INCIDENT, "reporter_kind": ""})
    assert error_summary(missing) == ["Say who it happened to"]
    assert _count(app, Incident) == 0
    assert _audit(app, "incident.create") == []


def test_the_form_offers_whom_it_happened_to_staff_first(staff) -> None:
    html = staff("agent").get("/console/incidents/new").get_data(as_text=True)
    for code in ("staff", "councillor", "contractor"):
        assert f'value="{code}"' in html
    assert re.search(r'value="staff"\s+checked', html)


def test_a_date_in_the_future_is_refused(app, staff) -> None:
    tomorrow = date.today() + timedelta(days=2)
    reply = _record(
        staff("agent"),
        occurred_on=[str(tomorrow.day), str(tomorrow.month), str(tomorrow.year)],
    )
    assert reply.status_code == 422
    assert error_summary(reply) == ["The date must be today or in the past"]
    assert _count(app, Incident) == 0


def test_a_form_without_its_token_changes_nothing(app, staff) -> None:
    agent = staff("agent")
    reply = agent.post("/console/incidents/new", data=INCIDENT)
    assert reply.status_code == 400
    assert _count(app, Incident) == 0


def test_the_form_offers_the_catalogues_channels_and_behaviour_types(settings, staff) -> None:
    html = staff("agent").get("/console/incidents/new").get_data(as_text=True)
    for code, label in settings.catalogue.channels.items():
        assert f'value="{code}"' in html and label in html
    for code in settings.catalogue.behaviour_types:
        assert f'value="{code}"' in html


def test_a_role_without_the_permission_gets_a_403_page_and_an_audit_entry(app, staff) -> None:
    reply = staff("auditor").get("/console/incidents/new")
    assert reply.status_code == 403
    assert "You cannot use this page" in text(reply)
    [entry] = _audit(app, "incident.create")
    assert entry.outcome == "denied"


def _incident(client, auth_headers, ref: str = "CRM-2001", day: str = "2025-03-01") -> str:
    body = {
        "subject": {"kind": "customer", "ref": ref},
        "occurred_at": f"{day}T10:30:00Z",
        "channel": "in_person",
        "behaviour_types": ["threats"],
        "narrative": f"Threatened the receptionist ({ref}).",
        "warning_given": True,
    }
    reply = client.post("/api/v1/incidents", json=body, headers=auth_headers("case_officer"))
    assert reply.status_code == 201
    return reply.get_json()["id"]


def test_the_triage_queue_lists_untriaged_incidents_oldest_first(client, auth_headers, staff):
    first = _incident(client, auth_headers, "CRM-1")
    second = _incident(client, auth_headers, "CRM-2")
    manager = staff("senior_manager")
    assert "Incidents to triage: 2" in text(manager.get("/"))
    queue = manager.get("/console/incidents/triage").get_data(as_text=True)
    assert queue.index(first) < queue.index(second)
    assert "Threatened the receptionist" not in queue


def test_triage_shows_the_narrative_audited_and_records_the_decision(
    app, client, auth_headers, staff
):
    incident_id = _incident(client, auth_headers)
    manager = staff("senior_manager", user="u.sm")
    path = f"/console/incidents/{incident_id}/triage"
    page = manager.get(path)
    assert "Threatened the receptionist (CRM-2001)." in text(page)
    assert "span>" not in text(page)  # the wrapping markup is markup, not text
    [read] = _audit(app, "incident.read")
    assert (read.actor_id, read.subject_kind, read.subject_ref) == ("u.sm", "customer", "CRM-2001")
    reply = manager.post(
        path, data={"csrf_token": csrf_token(page.get_data(as_text=True)), **TRIAGE}
    )
    assert reply.status_code == 302
    assert "Your triage decision is recorded" in text(manager.get(reply.headers["Location"]))
    assert _count(app, Incident, Incident.triage == "refer_to_case_review") == 1
    assert "Incidents to triage: 0" in text(manager.get("/"))


def test_triage_without_the_considerations_is_refused_and_changes_nothing(
    app, client, auth_headers, staff
) -> None:
    incident_id = _incident(client, auth_headers)
    manager = staff("customer_support_manager")
    reply = post_form(manager, f"/console/incidents/{incident_id}/triage", {"outcome": "monitor"})
    assert reply.status_code == 422
    assert error_summary(reply) == [
        "Say how the behaviour presented",
        "Describe the circumstances",
        "Say whether the customer is known to the council",
        "Say what support needs are known, or 'none known'",
    ]
    assert 'value="monitor" checked' in reply.get_data(as_text=True)
    assert _count(app, Incident, Incident.triage.is_not(None)) == 0
    assert _audit(app, "incident.triage") == []


def test_a_report_to_the_police_needs_its_crime_reference(app, client, auth_headers, staff):
    incident_id = _incident(client, auth_headers)
    manager = staff("senior_manager")
    path = f"/console/incidents/{incident_id}/triage"
    police = TRIAGE | {"outcome": "refer_to_police", "legal_reference": "typed under another"}
    refused = post_form(manager, path, police)
    assert refused.status_code == 422
    assert error_summary(refused) == ["Give the police crime reference (reference)"]
    assert 'value="refer_to_police" checked' in refused.get_data(as_text=True)
    assert _count(app, Incident, Incident.triage.is_not(None)) == 0
    assert (
        post_form(manager, path, police | {"police_reference": "CR/2026/0412"}).status_code == 302
    )
    assert _count(app, Incident, Incident.triage == "refer_to_police") == 1


def test_an_incident_triaged_already_cannot_be_triaged_again(app, client, auth_headers, staff):
    incident_id = _incident(client, auth_headers)
    manager = staff("senior_manager")
    path = f"/console/incidents/{incident_id}/triage"
    assert post_form(manager, path, TRIAGE).status_code == 302
    page = manager.get(path)
    assert "This incident was triaged already: refer to case review." in text(page)
    again = manager.post(
        path, data={"csrf_token": csrf_token(page.get_data(as_text=True)), **TRIAGE}
    )
    assert again.status_code == 422
    assert error_summary(again) == [
        f"Incident {incident_id} was already triaged (refer_to_case_review)"
    ]


def test_an_unknown_incident_is_a_404_page(staff) -> None:
    reply = staff("senior_manager").get("/console/incidents/nope/triage")
    assert reply.status_code == 404
    assert "No incident nope" in text(reply)


def test_the_queue_is_paged(client, auth_headers, staff) -> None:
    for n in range(26):
        _incident(client, auth_headers, f"CRM-{n}")
    manager = staff("senior_manager")
    first = manager.get("/console/incidents/triage")
    assert "26 incidents wait" in text(first)
    assert 'href="/console/incidents/triage?page=2"' in first.get_data(as_text=True)
    second = manager.get("/console/incidents/triage?page=2").get_data(as_text=True)
    assert "Customer CRM-25" in second
    assert "Customer CRM-0<" not in second


def test_control_characters_are_refused_naming_the_box_and_keeping_what_was_typed(app, staff):
    agent = staff("agent")
    narrative = "Shouted at the counter.\x1b[2J\x00 Then left."
    reply = _record(agent, narrative=narrative, occurred_time="10:30")
    assert reply.status_code == 422
    assert error_summary(reply) == ["Remove the hidden control characters from 'What happened?'"]
    html = reply.get_data(as_text=True)
    assert 'href="#narrative"' in html
    # The text box shows what was typed, so nothing has to be typed again.
    assert "Shouted at the counter.\x1b[2J\x00 Then left." in html
    assert _count(app, Incident) == 0
    assert _audit(app, "incident.create") == []
    # Tabs and line breaks are text people type: they pass.
    assert _record(agent, narrative="Shouted:\r\n\tthen left.").status_code == 302


def test_triage_refuses_control_characters_in_each_box_and_records_nothing(
    app, client, auth_headers, staff
) -> None:
    incident_id = _incident(client, auth_headers)
    manager = staff("customer_support_manager")
    path = f"/console/incidents/{incident_id}/triage"
    reply = post_form(
        manager,
        path,
        TRIAGE | {"circumstances": "Repair\x07 refused", "support_needs": "none\x85known"},
    )
    assert reply.status_code == 422
    assert error_summary(reply) == [
        "Remove the hidden control characters from 'What were the circumstances leading to it?'",
        "Remove the hidden control characters from 'Known disability or other need for support'",
    ]
    assert 'value="telephone, twice this week"' in reply.get_data(as_text=True)
    assert _count(app, Incident, Incident.triage.is_not(None)) == 0
    assert _audit(app, "incident.triage") == []
