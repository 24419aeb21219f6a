"""The privacy officer's pages: the access log, its verification, and privacy alerts."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from sidecar.audit.models import AuditEntry
from sidecar.audit.trail import AuditFilter
from sidecar.lookup.models import PrivacyAlert
from tests.console.conftest import error_summary, post_form, text
from tests.lifecycle.conftest import PROPOSAL

OTHER_REASON = {"reason_code": "other", "reason_text": "Checking before a neighbour dispute call"}


def _audit(app, action: str) -> list[AuditEntry]:
    with app.extensions["forewarn"].database.transaction() as session:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
        return list(session.scalars(query))


def _entries(app) -> int:
    with app.extensions["forewarn"].database.transaction() as session:
        return session.scalar(select(func.count()).select_from(AuditEntry)) or 0


def _alert(client, auth_headers, ref: str = "CRM-4001") -> str:
    """A grant with reason 'other' raises an alert, as a visiting officer's would."""
    headers = auth_headers("visiting_officer", user="u.visitor", name="Val Visitor")
    reply = client.post(
        f"/api/v1/subjects/customer/{ref}/access-grants", json=OTHER_REASON, headers=headers
    )
    assert reply.status_code == 201, reply.get_json()
    reply = client.get("/api/v1/alerts", headers=auth_headers("auditor"))
    return next(a["id"] for a in reply.get_json()["alerts"] if a["subject"]["ref"] == ref)


def test_the_log_filters_by_subject_and_staff_member_and_its_reading_is_audited(
    app, staff, client, auth_headers
) -> None:
    _alert(client, auth_headers, "CRM-4001")
    _alert(client, auth_headers, "CRM-4002")
    officer = staff("auditor", user="u.pat", name="Pat Privacy")
    reads_before = len(_audit(app, "audit.read"))
    reply = officer.get("/console/access-log?kind=customer&ref=CRM-4001&actor=u.visitor")
    assert reply.status_code == 200
    page = text(reply)
    assert "Val Visitor (u.visitor), visiting officer" in page
    assert "access_grant.create" in page and "Customer CRM-4001" in page
    assert "CRM-4002" not in page
    assert "Purpose: Other (explain): Checking before a neighbour dispute call" in page
    # One entry, as GET /api/v1/audit records, naming the filters and how many were shown.
    reads = _audit(app, "audit.read")
    assert len(reads) == reads_before + 1
    entry = reads[-1]
    assert (entry.actor_id, entry.subject_kind, entry.subject_ref) == (
        "u.pat",
        "customer",
        "CRM-4001",
    )
    assert entry.outcome_reason.endswith("actor=u.visitor; 1 entries")


def test_refusals_are_found_by_outcome_and_dates_bound_the_search(app, staff) -> None:
    agent = staff("agent", user="u.agent")
    assert agent.get("/console/incidents/triage").status_code == 403
    officer = staff("auditor", user="u.pat")
    page = text(officer.get("/console/access-log?outcome=denied"))
    assert "Refused no role held grants incident.triage" in page
    assert "Allowed" not in page.split("Show entries")[1]
    page = text(officer.get("/console/access-log?outcome=denied&start=1&start=1&start=2020"))
    assert "incident.triage" in page
    page = text(
        officer.get(
            "/console/access-log?outcome=denied&start=1&start=1&start=2020&end=2&end=1&end=2020"
        )
    )
    assert "No entry matches these filters" in page


def test_the_log_pages_by_sequence_number(app, staff, monkeypatch) -> None:
    from sidecar.console import privacy

    monkeypatch.setattr(privacy, "LOG_PAGE", 2)
    for n in range(3):
        staff("agent", user=f"u.agent{n}")
    officer = staff("auditor", user="u.pat")
    first = officer.get("/console/access-log?action=sign_in")
    page = text(first)
    assert "u.agent0" in page and "u.agent1" in page and "u.agent2" not in page
    html = first.get_data(as_text=True)
    assert "Next entries" in page
    next_url = html.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    assert "action=sign_in" in next_url and "after=" in next_url
    second = text(officer.get(next_url.replace("&amp;", "&")))
    assert "u.agent2" in second and "u.agent0" not in second
    assert "First entries" in second


def test_bad_filters_get_the_error_summary_keep_what_was_typed_and_read_nothing(app, staff) -> None:
    officer = staff("auditor", user="u.pat")
    before = len(_audit(app, "audit.read"))
    reply = officer.get(
        "/console/access-log?kind=&ref=CRM-1&action=DROP TABLE&outcome=maybe"
        "&start=31&start=2&start=2026&end=1&end=1&end=2020"
    )
    assert reply.status_code == 422
    assert error_summary(reply) == [
        "Choose whether the reference is a customer's or a property's",
        "Enter an action in lower case with dots, for example flag.read",
        "Choose allowed, refused or any",
        "The first day must be a real date, for example 1 3 2026",
    ]
    html = reply.get_data(as_text=True)
    assert 'value="DROP TABLE"' in html and 'value="CRM-1"' in html
    assert "<table" not in html
    assert len(_audit(app, "audit.read")) == before


def test_verifying_shows_the_verdict_and_is_audited(app, staff) -> None:
    officer = staff("auditor", user="u.pat")
    assert "Verify the access log" in text(officer.get("/console/access-log/verify"))
    reply = post_form(officer, "/console/access-log/verify", {})
    assert reply.status_code == 200
    page = text(reply)
    assert "The access log is intact" in page
    [entry] = _audit(app, "audit.verify")
    assert entry.actor_id == "u.pat" and entry.outcome_reason.startswith("audit trail intact")


def test_verifying_names_the_first_changed_entry(app, staff) -> None:
    officer = staff("auditor", user="u.pat")
    with app.extensions["forewarn"].database.transaction() as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 1).values(actor_id="u.other"))
    page = text(post_form(officer, "/console/access-log/verify", {}))
    assert "The access log is NOT intact" in page
    assert "The first bad entry is number 1" in page


def test_a_verification_without_the_form_token_is_refused(staff) -> None:
    officer = staff("auditor", user="u.pat")
    reply = officer.post("/console/access-log/verify", data={})
    assert reply.status_code == 400
    assert "Your form could not be sent" in text(reply)


def test_an_alert_is_reviewed_and_closed_with_a_note(app, staff, client, auth_headers) -> None:
    alert_id = _alert(client, auth_headers)
    officer = staff("auditor", user="u.pat", name="Pat Privacy")
    queue = text(officer.get("/console/privacy-alerts"))
    assert "1 alert is open" in queue
    assert "Access for a reason given as 'other': Val Visitor" in queue
    page = text(officer.get(f"/console/privacy-alerts/{alert_id}"))
    assert "gives reason 'other': Checking before a neighbour dispute call" in page
    assert "span>" not in page
    reads = [e for e in _audit(app, "alerts.read") if e.actor_id == "u.pat"]
    assert len(reads) == 2 and reads[-1].subject_ref == "CRM-4001"

    reply = post_form(
        officer,
        f"/console/privacy-alerts/{alert_id}",
        {"note": "Manager confirmed the call was booked."},
    )
    assert reply.status_code == 302
    assert reply.headers["Location"] == "/console/privacy-alerts"
    after = text(officer.get("/console/privacy-alerts"))
    assert "The alert is closed, with your note." in after
    assert "No privacy alert is open." in after
    with app.extensions["forewarn"].database.transaction() as session:
        alert = session.get(PrivacyAlert, alert_id)
        assert alert.closed_by == "u.pat"
        assert alert.close_note == "Manager confirmed the call was booked."
    [listed] = client.get("/api/v1/alerts", headers=auth_headers("auditor")).get_json()["alerts"]
    assert listed["closed"]["by"] == "u.pat"
    assert listed["closed"]["note"] == "Manager confirmed the call was booked."
    [entry] = _audit(app, "alerts.close")
    assert (entry.actor_id, entry.subject_ref) == ("u.pat", "CRM-4001")
    assert f"alert {alert_id} (reason_other) about u.visitor closed" == entry.outcome_reason
    page = text(officer.get(f"/console/privacy-alerts/{alert_id}"))
    assert "by Pat Privacy" in page and "Manager confirmed the call was booked." in page
    assert "Close the alert" not in page


def test_closing_without_a_note_changes_nothing(app, staff, client, auth_headers) -> None:
    alert_id = _alert(client, auth_headers)
    officer = staff("auditor", user="u.pat")
    entries = _entries(app)
    reply = post_form(officer, f"/console/privacy-alerts/{alert_id}", {"note": "   "})
    assert reply.status_code == 422
    assert error_summary(reply) == ["Say what you found or did before closing the alert"]
    with app.extensions["forewarn"].database.transaction() as session:
        assert session.get(PrivacyAlert, alert_id).closed_at is None
    assert _audit(app, "alerts.close") == []
    # The GET that showed the form and the page shown again are the only entries.
    assert _entries(app) == entries + 2


def test_an_unknown_alert_is_not_found(staff) -> None:
    reply = staff("auditor").get("/console/privacy-alerts/nope")
    assert reply.status_code == 404
    assert "Page not found" in text(reply)


def test_the_home_page_counts_open_alerts_for_a_privacy_officer(staff, client, auth_headers):
    _alert(client, auth_headers, "CRM-4001")
    _alert(client, auth_headers, "CRM-4002")
    page = text(staff("privacy_officer").get("/"))
    assert "Privacy alerts to review: 2" in page
    assert "Privacy alerts" not in text(staff("case_officer").get("/"))


def _flagged_customer(client, auth_headers) -> str:
    officer = auth_headers("case_officer", user="u.officer", name="Olly Officer")
    reply = client.post("/api/v1/flags", json=PROPOSAL, headers=officer)
    assert reply.status_code == 201, reply.get_json()
    return PROPOSAL["subject"]["ref"]


def test_a_subject_access_request_is_found_by_reference_and_printed(
    app, staff, client, auth_headers
) -> None:
    ref = _flagged_customer(client, auth_headers)
    officer = staff("privacy_officer", user="u.pat")
    assert "Subject access request" in text(officer.get("/console/subject-access"))
    no_request = officer.get(f"/console/subject-access?kind=customer&ref={ref}")
    assert no_request.status_code == 422
    assert error_summary(no_request) == ["Enter the request's reference"]
    reply = officer.get(f"/console/subject-access?kind=customer&ref={ref}&request_ref=SAR-77")
    assert reply.status_code == 303
    assert reply.headers["Location"] == (
        f"/console/subjects/customer/{ref}/subject-access?request_ref=SAR-77"
    )
    exports = len(_audit(app, "sar.export"))
    page = text(officer.get(reply.headers["Location"]))
    assert f"Customer {ref}" in page
    assert PROPOSAL["reason"] in page
    assert "Staff names are withheld: their roles are given" in page
    assert "Olly Officer" not in page
    # Recorded as POST /api/v1/subjects/{kind}/{ref}/subject-access-export records it.
    entries = _audit(app, "sar.export")
    assert len(entries) == exports + 1
    assert (entries[-1].actor_id, entries[-1].subject_ref) == ("u.pat", ref)
    assert (entries[-1].purpose_code, entries[-1].purpose_text) == (
        "subject_access_request",
        "SAR-77",
    )
    # Without a request's reference there is no export, only the form again.
    bare = officer.get(f"/console/subjects/customer/{ref}/subject-access")
    assert bare.status_code == 303 and "/console/subject-access?" in bare.headers["Location"]
    assert len(_audit(app, "sar.export")) == exports + 1


def test_the_subject_access_download_is_the_api_export(app, staff, client, auth_headers) -> None:
    ref = _flagged_customer(client, auth_headers)
    officer = staff("privacy_officer", user="u.pat")
    reply = officer.get(f"/console/subjects/customer/{ref}/subject-access.json?request_ref=SAR-8")
    assert reply.status_code == 200
    assert reply.headers["Content-Disposition"] == (
        f'attachment; filename="subject-access-customer-{ref}.json"'
    )
    assert reply.headers["Cache-Control"] == "no-store"
    body = reply.get_json()
    api = client.post(
        f"/api/v1/subjects/customer/{ref}/subject-access-export",
        json={"request_ref": "SAR-8"},
        headers=auth_headers("privacy_officer"),
    ).get_json()
    assert body["request_ref"] == api["request_ref"] == "SAR-8"
    assert body["sections"] == api["sections"] == ["flags", "incidents", "access_events"]
    assert body["flags"] == api["flags"]
    assert body["flags"][0]["confidential"]["reason"] == PROPOSAL["reason"]
    assert [e.actor_id for e in _audit(app, "sar.export")][-2:] == ["u.pat", "u.privacy_officer"]


def test_a_bad_reference_for_a_subject_access_request_exports_nothing(app, staff) -> None:
    officer = staff("privacy_officer", user="u.pat")
    reply = officer.get("/console/subject-access?kind=property&ref=12-AB&request_ref=SAR-1")
    assert reply.status_code == 422
    assert error_summary(reply) == [
        "Enter the UPRN as digits only, 12 at most, for example 100023336956"
    ]
    assert 'value="12-AB"' in reply.get_data(as_text=True)
    assert _audit(app, "sar.export") == []


@pytest.mark.parametrize(
    ("where", "used"),
    [
        (AuditFilter(kind="customer", ref="CRM-1"), "INDEX ix_audit_subject"),
        (AuditFilter(actor="u.visitor"), "INDEX ix_audit_actor"),
        (AuditFilter(action="details.read"), "INDEX ix_audit_action"),
        (AuditFilter(outcome="denied"), "INDEX ix_audit_denied"),
        (AuditFilter(), "INTEGER PRIMARY KEY"),
    ],
    ids=["subject", "staff member", "action", "refusals", "none"],
)
def test_each_page_of_the_log_is_read_by_an_index_in_sequence_order(
    app, engine_kind, where, used
) -> None:
    if engine_kind != "sqlite":
        pytest.skip("the plan is read from SQLite's EXPLAIN QUERY PLAN")
    database = app.extensions["forewarn"].database
    query = where.apply(select(AuditEntry.__table__)).where(AuditEntry.seq > 100)
    query = query.order_by(AuditEntry.seq).limit(51)
    sql = str(query.compile(database.engine, compile_kwargs={"literal_binds": True}))
    with database.engine.connect() as connection:
        plan = [row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
    # One search from the cursor on, in sequence order: no scan, no sort.
    assert plan == [plan[0]] and plan[0].startswith(f"SEARCH audit_entries USING {used} ("), plan
    assert "seq>?" in plan[0] or "rowid>?" in plan[0], plan
