"""A subject is one subject however its reference is written: zero-padded, spaced, or bare."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sidecar.audit.models import AuditEntry
from tests import factories

UPRN = "100023336956"
PADDED = "0100023336956"
ZEROS = "0" * 40
NEED = {"reason_code": "home_visit", "reason_text": "Visit on Tuesday about the repair"}


@pytest.fixture
def red_property(register):
    with register() as (session, ring):
        prop = factories.subject(session, "property", UPRN)
        return factories.flag(session, ring, prop, level="red").id


def test_a_red_property_is_red_when_asked_with_leading_zeros(
    app, client, auth_headers, red_property
) -> None:
    agent = auth_headers("agent")
    for asked in (PADDED, "000" + UPRN, UPRN):
        body = client.get(f"/api/v1/subjects/property/{asked}/banner", headers=agent).get_json()
        assert body["status"] == "red", asked
        assert body["subject"] == {"kind": "property", "ref": UPRN}
    with app.extensions["forewarn"].database.transaction() as session:
        looked_at = session.scalars(
            select(AuditEntry.subject_ref).where(AuditEntry.action == "banner.read")
        ).all()
    assert looked_at == [UPRN, UPRN, UPRN]


def test_a_grant_asked_with_leading_zeros_opens_the_property_details(
    client, auth_headers, red_property
) -> None:
    officer = auth_headers("visiting_officer")
    granted = client.post(
        f"/api/v1/subjects/property/{PADDED}/access-grants", json=NEED, headers=officer
    )
    assert granted.status_code == 201
    details = client.get(f"/api/v1/flags/{red_property}/details", headers=officer)
    assert details.status_code == 200


def test_the_audit_search_and_the_sar_find_the_property_by_any_spelling(
    client, auth_headers, red_property
) -> None:
    client.get(f"/api/v1/subjects/property/{UPRN}/banner", headers=auth_headers("agent"))
    auditor = auth_headers("auditor")
    found = client.get(
        f"/api/v1/audit?kind=property&ref={PADDED}&action=banner.read", headers=auditor
    ).get_json()
    assert [e["subject_ref"] for e in found["entries"]] == [UPRN]
    export = client.get(f"/api/v1/subjects/property/{PADDED}/sar-export", headers=auditor)
    assert export.status_code == 200
    assert red_property in export.get_data(as_text=True)


def test_a_link_made_with_leading_zeros_shows_on_the_bare_uprn(
    client, auth_headers, register
) -> None:
    with register() as (session, ring):
        factories.flag(session, ring, factories.subject(session, "customer", "CRM-7"))
    case = auth_headers("case_officer")
    linked = client.post(
        "/api/v1/subjects/customer/CRM-7/links", json={"property": PADDED}, headers=case
    )
    assert linked.status_code == 201, linked.get_json()
    banner = client.get(f"/api/v1/subjects/property/{UPRN}/banner", headers=case).get_json()
    assert banner["status"] == "red"
    links = client.get("/api/v1/subjects/customer/CRM-7/links", headers=case).get_json()
    assert links["properties"] == [UPRN]


@pytest.mark.parametrize(
    ("method", "path", "role", "body", "field"),
    [
        ("get", f"/api/v1/subjects/property/{ZEROS}/banner", "agent", None, "ref"),
        (
            "post",
            f"/api/v1/subjects/property/{ZEROS}/access-grants",
            "visiting_officer",
            NEED,
            "ref",
        ),
        ("get", f"/api/v1/subjects/property/{ZEROS}/sar-export", "auditor", None, "ref"),
        ("get", f"/api/v1/incidents?kind=property&ref={ZEROS}", "case_officer", None, "ref"),
        ("get", f"/api/v1/audit?kind=property&ref={ZEROS}", "auditor", None, "ref"),
        (
            "post",
            "/api/v1/subjects/customer/CRM-7/links",
            "case_officer",
            {"property": ZEROS},
            None,
        ),
        (
            "post",
            "/api/v1/incidents",
            "agent",
            {
                "subject": {"kind": "property", "ref": ZEROS},
                "occurred_at": "2026-05-01T10:00:00+01:00",
                "channel": "phone",
                "behaviour_types": ["aggressive_or_abusive"],
                "narrative": "Shouted",
                "warning_given": False,
            },
            "subject.ref",
        ),
    ],
)
def test_a_reference_of_only_zeros_is_refused_as_naming_no_property(
    client, auth_headers, method, path, role, body, field
) -> None:
    response = getattr(client, method)(path, json=body, headers=auth_headers(role))
    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert "names no property" in problem["detail"]
    if field is not None:
        assert field in {e["field"] for e in problem["errors"]}
