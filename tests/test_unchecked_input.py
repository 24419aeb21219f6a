"""Input nobody checked must never reach the server as a 500: each is a problem naming it."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from sidecar.identity.launch import DEMO_KID
from sidecar.storage.keys import KeyFiles
from tests import factories

NESTED = "[" * 100_000 + "]" * 100_000


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/problem+json"
    return response.get_json()


def test_a_deeply_nested_body_is_malformed_json_even_before_sign_in(client, auth_headers) -> None:
    headers = {"Content-Type": "application/json"}
    body = problem(client.post("/auth/launch", data=NESTED, headers=headers), 400)
    assert body["type"].endswith("/malformed-json")
    signed_in = auth_headers("agent") | headers
    incident = client.post("/api/v1/incidents", data=NESTED, headers=signed_in)
    assert problem(incident, 400)["type"].endswith("/malformed-json")


def test_an_audit_cursor_past_any_entry_is_422_naming_the_cursor(client, auth_headers) -> None:
    response = client.get("/api/v1/audit?cursor=" + "9" * 400, headers=auth_headers("auditor"))
    assert "cursor" in {e["field"] for e in problem(response, 422)["errors"]}


@pytest.mark.parametrize(
    "bound", ["from=0001-01-01", "to=9999-12-31", "from=0001-01-01&to=0001-01-02"]
)
def test_a_summary_from_the_year_one_is_422_naming_the_date(client, auth_headers, bound) -> None:
    response = client.get(f"/api/v1/reports/summary?{bound}", headers=auth_headers("case_officer"))
    fields = {e["field"] for e in problem(response, 422)["errors"]}
    assert fields & {"from", "to"}


def test_a_letter_number_no_letter_can_have_is_not_found(app, client, auth_headers) -> None:
    state = app.extensions["forewarn"]
    with app.app_context(), state.database.transaction() as session:
        flag_id = factories.flag(session, state.keyring, factories.subject(session)).id
    letter = f"/api/v1/flags/{flag_id}/letters/" + "9" * 30
    problem(client.get(letter, headers=auth_headers("customer_support_manager")), 404)


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00Z"])
def test_an_incident_in_the_year_one_is_422_naming_when(client, auth_headers, moment) -> None:
    report = {
        "subject": {"kind": "customer", "ref": "CRM-1"},
        "occurred_at": moment,
        "channel": "phone",
        "behaviour_types": ["verbal_abuse"],
        "narrative": "Shouted at the officer",
        "warning_given": False,
    }
    response = client.post("/api/v1/incidents", json=report, headers=auth_headers("agent"))
    assert "occurred_at" in {e["field"] for e in problem(response, 422)["errors"]}


@pytest.mark.parametrize(
    ("claim", "value"), [("exp", str), ("iat", str), ("exp", lambda _: float("inf"))]
)
def test_a_signed_launch_token_with_a_time_not_a_number_is_refused(
    client, settings, claim, value
) -> None:
    key = KeyFiles.of(settings.instance_dir).launch_demo_key.read_bytes()
    now = int(time.time())
    claims = {
        "sub": "u.agent",
        "roles": ["agent"],
        "aud": settings.deployment.public_url,
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
    }
    claims[claim] = value(claims[claim])
    token = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": DEMO_KID})
    body = problem(client.post("/auth/launch", json={"token": token}), 401)
    assert claim in body["detail"]
