"""Reading the trail: filtered pages, JSON-lines export and subject access exports."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from sidecar.audit import writer as audit
from sidecar.audit.models import AuditEntry
from tests.audit.conftest import forewarn, sign_in


def _visits(app) -> None:
    """Two officers look at customer CRM-1, one at CRM-2, with their business need."""
    with app.app_context():
        for actor, name, ref, code, why in (
            ("u.vo1", "Val One", "CRM-1", "home_visit", "visit on 3 March about damp"),
            ("u.vo2", "Vic Two", "CRM-1", "case_work", "reviewing the housing case"),
            ("u.vo1", "Val One", "CRM-2", "home_visit", "visit on 4 March"),
        ):
            audit.record(
                audit.AuditEvent(
                    action="details.view",
                    subject_kind="customer",
                    subject_ref=ref,
                    purpose_code=code,
                    purpose_text=why,
                    actor_id=actor,
                    actor_name=name,
                    actor_roles="visiting_officer",
                    via="widget",
                )
            )


def _last(app) -> AuditEntry:
    with app.extensions["forewarn"].database.transaction() as session:
        return session.execute(select(AuditEntry).order_by(AuditEntry.seq.desc())).scalar()


def test_filters_select_entries_and_the_read_is_itself_recorded(app, client, auth_headers) -> None:
    _visits(app)
    headers = auth_headers("auditor", user="u.dpo", name="Dee Pio")
    response = client.get("/api/v1/audit?kind=customer&ref=CRM-1", headers=headers)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert [(e["actor_id"], e["purpose_code"]) for e in body["entries"]] == [
        ("u.vo1", "home_visit"),
        ("u.vo2", "case_work"),
    ]
    assert body["next_cursor"] is None
    read = _last(app)
    assert (read.action, read.actor_id, read.subject_ref) == ("audit.read", "u.dpo", "CRM-1")
    assert read.outcome_reason == "filters: kind=customer ref=CRM-1; 2 entries"

    by_actor = client.get("/api/v1/audit?actor=u.vo1&action=details.view", headers=headers)
    assert [e["subject_ref"] for e in by_actor.get_json()["entries"]] == ["CRM-1", "CRM-2"]


def test_time_range_and_cursor_paging(app, client, auth_headers, record_many) -> None:
    record_many(7, action="test.event")
    headers = auth_headers("auditor", user="u.dpo")
    seen, cursor = [], None
    while True:
        query = "action=test.event&limit=3" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(f"/api/v1/audit?{query}", headers=headers).get_json()
        seen += [e["seq"] for e in body["entries"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [1, 2, 3, 4, 5, 6, 7]

    today = datetime.now(UTC).date()
    tomorrow = today + timedelta(days=1)
    in_range = client.get(
        f"/api/v1/audit?action=test.event&from={today}&to={today}", headers=headers
    )
    assert len(in_range.get_json()["entries"]) == 7
    later = client.get(f"/api/v1/audit?action=test.event&from={tomorrow}", headers=headers)
    assert later.get_json()["entries"] == []


def test_bad_filters_are_named(client, auth_headers) -> None:
    headers = auth_headers("auditor")
    response = client.get("/api/v1/audit?from=last-week&colour=red", headers=headers)
    assert response.status_code == 422
    fields = {e["field"] for e in response.get_json()["errors"]}
    assert fields == {"from", "colour"}
    assert client.get("/api/v1/audit?kind=boat", headers=headers).status_code == 422


def test_only_auditors_read_verify_and_export(client, auth_headers) -> None:
    for role in ("agent", "visiting_officer", "customer_support_manager", "admin"):
        headers = auth_headers(role)
        for path in (
            "/api/v1/audit",
            "/api/v1/audit/verify",
            "/api/v1/subjects/customer/CRM-1/sar-export",
        ):
            assert client.get(path, headers=headers).status_code == 403, (role, path)
    assert client.get("/api/v1/audit").status_code == 401


SUBJECT_ACCESS = "/api/v1/subjects/customer/CRM-1/subject-access-export"


def test_sar_export_gives_dates_and_purposes_and_withholds_staff(app, client, auth_headers) -> None:
    _visits(app)
    headers = auth_headers("privacy_officer", user="u.dpo")
    response = client.post(SUBJECT_ACCESS, json={"request_ref": "SAR-1"}, headers=headers)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["subject"] == {"kind": "customer", "ref": "CRM-1"}
    assert body["staff_identities"] == "withheld"
    assert "access_events" in body["sections"]
    visits = [e for e in body["access_events"] if e["action"] == "details.view"]
    assert [v["purpose"] for v in visits] == [
        {
            "code": "home_visit",
            "label": "Planned home visit",
            "text": "visit on 3 March about damp",
        },
        {
            "code": "case_work",
            "label": "Case work on this customer",
            "text": "reviewing the housing case",
        },
    ]
    assert all(v["staff"] == {"roles": ["visiting_officer"]} for v in visits)
    assert all(datetime.fromisoformat(v["at"]).tzinfo is not None for v in visits)
    text = response.get_data(as_text=True)
    assert "Val One" not in text and "u.vo1" not in text
    assert (_last(app).action, _last(app).subject_ref) == ("sar.export", "CRM-1")


def test_sar_export_names_staff_when_configured(make_app, launch_token) -> None:
    app = make_app(sar_include_staff_identities=True)
    _visits(app)
    headers = sign_in(app, launch_token("u.dpo", ("privacy_officer",)))
    body = (
        app.test_client()
        .post(SUBJECT_ACCESS, json={"request_ref": "SAR-1"}, headers=headers)
        .get_json()
    )
    assert body["staff_identities"] == "included"
    assert body["access_events"][0]["staff"] == {
        "id": "u.vo1",
        "name": "Val One",
        "roles": ["visiting_officer"],
    }


def test_cli_export_is_json_lines_filtered_and_recorded(app, instance_dir, database_url) -> None:
    _visits(app)
    today = datetime.now(UTC).date().isoformat()
    result = forewarn(
        "audit",
        "export",
        "--subject",
        "customer:CRM-1",
        "--from",
        today,
        "--to",
        today,
        instance=instance_dir,
        database_url=database_url,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["action"], e["actor_id"]) for e in lines] == [
        ("details.view", "u.vo1"),
        ("details.view", "u.vo2"),
        ("audit.export", lines[-1]["actor_id"]),
    ]
    assert lines[-1]["actor_id"].startswith("cli:") and lines[-1]["via"] == "cli"
    assert lines[-1]["outcome_reason"].startswith("filters: kind=customer ref=CRM-1 start=")
    # Every field needed to recompute the chain is in the export.
    assert lines[0]["entry_hash"] == audit.entry_hash(
        lines[0] | {"at": datetime.fromisoformat(lines[0]["at"])}
    )


def test_cli_export_bad_input_exits_2(instance_dir, database_url) -> None:
    for args in (("--subject", "boat:1"), ("--subject", "customer:"), ("--from", "soon")):
        result = forewarn(
            "audit", "export", *args, instance=instance_dir, database_url=database_url
        )
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""
