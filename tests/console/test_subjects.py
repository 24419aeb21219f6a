"""Finding a subject and its page: the same records and the same audit as the API's calls."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from sidecar.audit.models import AuditEntry
from tests.console.conftest import error_summary, text
from tests.lifecycle.conftest import ASSESSMENT, PROPOSAL


def _audit(app, action: str) -> list[AuditEntry]:
    with app.extensions["forewarn"].database.transaction() as session:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
        return list(session.scalars(query))


def _incident(
    client, headers, ref: str = "CRM-2001", narrative: str = "Shouted at reception."
) -> None:
    body = {
        "subject": {"kind": "customer", "ref": ref},
        "occurred_at": "2025-03-01T10:30:00Z",
        "channel": "in_person",
        "behaviour_types": ["threats"],
        "narrative": narrative,
        "warning_given": True,
    }
    assert client.post("/api/v1/incidents", json=body, headers=headers).status_code == 201


def _active_flag(client, auth_headers) -> str:
    officer = auth_headers("case_officer", user="u.officer")
    flag_id = client.post("/api/v1/flags", json=PROPOSAL, headers=officer).get_json()["id"]
    for role in ("customer_support_manager", "senior_manager", "hs_manager"):
        reply = client.post(
            f"/api/v1/flags/{flag_id}/panel-decisions",
            json={"role": role, "decision": "approve", **ASSESSMENT},
            headers=auth_headers(role, user=f"u.{role}"),
        )
        assert reply.status_code == 201
    notice = {"method": "letter", "recipient_name": "Mr T", "recipient_address": "1 Road"}
    headers = auth_headers("customer_support_manager", user="u.customer_support_manager")
    assert (
        client.post(f"/api/v1/flags/{flag_id}/notice", json=notice, headers=headers).status_code
        == 201
    )
    return flag_id


def test_a_search_goes_to_the_subject_page(staff) -> None:
    reply = staff("case_officer").get("/console/subjects?kind=property&ref=0100023336956")
    assert reply.status_code == 303
    assert reply.headers["Location"] == "/console/subjects/property/100023336956"


def test_a_bad_reference_gets_the_error_summary_and_keeps_what_was_typed(staff) -> None:
    reply = staff("case_officer").get("/console/subjects?kind=property&ref=12-AB")
    assert reply.status_code == 422
    assert error_summary(reply) == [
        "Enter the UPRN as digits only, 12 at most, for example 100023336956"
    ]
    assert 'value="12-AB"' in reply.get_data(as_text=True)
    empty = staff("case_officer").get("/console/subjects?kind=customer&ref=")
    assert error_summary(empty) == ["Enter a reference"]


def test_a_subject_the_register_does_not_hold_says_so(staff) -> None:
    page = staff("case_officer").get("/console/subjects/customer/CRM-404")
    assert page.status_code == 200
    assert "Forewarn holds no record of this customer" in text(page)


def test_a_bad_reference_in_the_address_is_a_clear_error_page(staff) -> None:
    page = staff("case_officer").get("/console/subjects/property/not-a-uprn")
    assert page.status_code == 422
    assert "must be digits only" in text(page)


def test_the_page_shows_flags_history_letters_links_and_incidents(app, client, auth_headers, staff):
    _incident(client, auth_headers("case_officer"))
    _active_flag(client, auth_headers)
    link = client.post(
        "/api/v1/subjects/customer/CRM-2001/links",
        json={"property": "100023336956"},
        headers=auth_headers("case_officer"),
    )
    assert link.status_code == 201
    page = text(
        staff("customer_support_manager", user="u.reader").get(
            "/console/subjects/customer/CRM-2001"
        )
    )
    assert f"FW-{date.today().year}-0001, red flag: Physical violence" in page
    assert "Active" in page
    assert "Visits in pairs" in page
    assert "proposed a red flag for case review" in page
    assert "Letter 1: decision" in page
    assert "100023336956" in page
    # The reader has no part in the case and no grant: the incident without its narrative.
    assert "Shouted at reception." not in page
    assert "What happened is confidential" in page
    reporter = text(staff("case_officer").get("/console/subjects/customer/CRM-2001"))
    assert "Shouted at reception." in reporter
    # Not a confidential field: the reason stays behind the details rule.
    assert PROPOSAL["reason"] not in page


def test_reading_the_page_is_audited_as_the_apis_calls_for_the_same_data(
    app, client, auth_headers, staff
) -> None:
    _incident(client, auth_headers("case_officer"))
    flag_id = _active_flag(client, auth_headers)
    reader = auth_headers("customer_support_manager", user="u.reader")
    client.get("/api/v1/incidents?kind=customer&ref=CRM-2001", headers=reader)
    client.get(f"/api/v1/flags/{flag_id}", headers=reader)
    api = [
        (e.action, e.subject_kind, e.subject_ref, e.flag_id, e.outcome_reason)
        for e in _audit(app, "incident.read") + _audit(app, "flag.read")
    ]
    staff("customer_support_manager", user="u.reader").get("/console/subjects/customer/CRM-2001")
    both = [
        (e.action, e.subject_kind, e.subject_ref, e.flag_id, e.outcome_reason)
        for e in _audit(app, "incident.read") + _audit(app, "flag.read")
    ]
    assert sorted(both) == sorted(api * 2)


def test_a_reader_without_incident_read_sees_no_narratives(
    app, client, auth_headers, staff
) -> None:
    _incident(client, auth_headers("case_officer"))
    page = text(staff("legal").get("/console/subjects/customer/CRM-2001"))
    assert "Shouted at reception." not in page
    assert _audit(app, "incident.read") == []


def test_a_role_without_flag_read_is_refused_and_audited(app, staff) -> None:
    reply = staff("agent", user="u.agent").get("/console/subjects/customer/CRM-2001")
    assert reply.status_code == 403
    [entry] = _audit(app, "flag.read")
    assert (entry.outcome, entry.actor_id) == ("denied", "u.agent")


def test_incidents_on_the_page_are_paged(client, auth_headers, staff) -> None:
    headers = auth_headers("case_officer")
    for n in range(27):
        _incident(client, headers, narrative=f"Incident number {n}.")
    reader = staff("case_officer")
    first = reader.get("/console/subjects/customer/CRM-2001").get_data(as_text=True)
    assert first.count("Incident number") == 25
    second = reader.get("/console/subjects/customer/CRM-2001?page=2").get_data(as_text=True)
    assert second.count("Incident number") == 2
