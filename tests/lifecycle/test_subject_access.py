"""Subject access: the auditor's access report carries no confidential field; the privacy
officer's subject access export, a deliberate and audited act, carries the person's data."""

from __future__ import annotations

from sqlalchemy import select

from sidecar.audit.models import AuditEntry
from tests.lifecycle.conftest import ALL_MARKS, MARKS, NARRATIVE, marked_case


def _last(app) -> AuditEntry:
    with app.extensions["forewarn"].database.transaction() as session:
        return session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()


def test_the_auditors_export_shows_access_but_no_confidential_field(
    app, client, cases, staff
) -> None:
    flag_id = marked_case(client, cases, staff)
    auditor = staff("auditor", user="u.aud", name="Audrey Auditor")
    export = client.get("/api/v1/subjects/customer/CRM-2001/sar-export", headers=auditor)
    assert export.status_code == 200
    assert export.headers["Cache-Control"] == "no-store"
    text = export.get_data(as_text=True)
    for mark in ALL_MARKS:
        assert mark not in text, mark
    body = export.get_json()
    [flag] = body["flags"]
    assert (flag["id"], flag["state"], flag["level"]) == (flag_id, "active", "red")
    assert "confidential" not in flag
    assert [d["decision"] for d in flag["panel"]["decisions"]] == ["approve"] * 3
    [incident] = body["incidents"]
    assert incident["channel"] == "phone" and "narrative" not in incident
    assert incident["triage"]["outcome"] == "refer_to_case_review"
    # That access happened, by whom, when and why.
    [view] = [e for e in body["access_events"] if e["action"] == "details.read"]
    assert view["staff"] == {"id": "u.vo", "name": "Val Visitor", "roles": ["visiting_officer"]}
    assert view["purpose"]["code"] == "home_visit"
    assert view["at"]
    last = _last(app)
    assert (last.action, last.actor_id, last.subject_ref) == (
        "audit.subject_export",
        "u.aud",
        "CRM-2001",
    )
    refused = client.post(
        "/api/v1/subjects/customer/CRM-2001/subject-access-export",
        json={"request_ref": "SAR-1"},
        headers=auditor,
    )
    assert refused.status_code == 403


def test_the_privacy_officers_export_is_deliberate_audited_and_complete(
    app, client, cases, staff
) -> None:
    flag_id = marked_case(client, cases, staff)
    officer = staff("privacy_officer", user="u.dpo", name="Dee Pio")
    url = "/api/v1/subjects/customer/CRM-2001/subject-access-export"
    # The access report the officer also reads holds no confidential field; only the
    # export below, with its request reference, carries the person's data.
    report = client.get("/api/v1/subjects/customer/CRM-2001/sar-export", headers=officer)
    assert report.status_code == 200
    for mark in ALL_MARKS:
        assert mark not in report.get_data(as_text=True), mark
    missing = client.post(url, json={}, headers=officer)
    assert missing.status_code == 422
    assert "request_ref" in missing.get_json()["detail"]
    export = client.post(url, json={"request_ref": "SAR-2026-014"}, headers=officer)
    assert export.status_code == 200
    assert export.headers["Cache-Control"] == "no-store"
    body = export.get_json()
    assert body["request_ref"] == "SAR-2026-014"
    text = export.get_data(as_text=True)
    for mark in ALL_MARKS:
        assert mark in text, mark
    assert body["flags"][0]["confidential"]["reason"] == MARKS["reason"]
    assert body["incidents"][0]["narrative"] == NARRATIVE
    # The person's copy names no member of staff unless the council's config says so.
    for who in ("u.officer", "Olive Officer", "Val Visitor"):
        assert who not in text, who
    last = _last(app)
    assert (last.action, last.actor_id, last.subject_ref) == ("sar.export", "u.dpo", "CRM-2001")
    assert (last.purpose_code, last.purpose_text) == ("subject_access_request", "SAR-2026-014")
    # The privacy officer reads no details by role: the export is the only way to the data.
    assert client.get(f"/api/v1/flags/{flag_id}/details", headers=officer).status_code == 403
