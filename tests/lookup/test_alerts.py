"""Privacy alerts: many grants in a day, reason 'other', details outside the reader's team."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from sidecar import create_app
from tests import factories

GRANTS = "/api/v1/subjects/customer/{}/access-grants"
NEED = {"reason_code": "case_work", "reason_text": "Reviewing the housing complaint"}


def alerts(client, auth_headers, **query) -> list[dict]:
    response = client.get("/api/v1/alerts", query_string=query, headers=auth_headers("auditor"))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_json()["alerts"]


def test_reason_other_raises_an_alert(client, auth_headers) -> None:
    client.post(
        GRANTS.format("CRM-1"),
        json={"reason_code": "other", "reason_text": "Checking something for a friend"},
        headers=auth_headers("visiting_officer"),
    )
    client.post(GRANTS.format("CRM-2"), json=NEED, headers=auth_headers("visiting_officer"))
    [alert] = alerts(client, auth_headers)
    assert alert["kind"] == "reason_other"
    assert alert["user_id"] == "u.visiting_officer"
    assert alert["subject"] == {"kind": "customer", "ref": "CRM-1"}
    assert "for a friend" in alert["detail"]


def test_more_grants_in_a_day_than_the_threshold_raise_one_alert(
    client, auth_headers, settings
) -> None:
    headers = auth_headers("visiting_officer")
    limit = settings.lookup.alert_grants_per_day
    for n in range(limit):
        assert client.post(GRANTS.format(f"CRM-{n}"), json=NEED, headers=headers).status_code == 201
    assert alerts(client, auth_headers) == []
    for n in range(limit, limit + 3):
        client.post(GRANTS.format(f"CRM-{n}"), json=NEED, headers=headers)
    [alert] = alerts(client, auth_headers, kind="grant_volume")
    assert alert["detail"] == f"{limit + 1} access grants today, more than the {limit} expected"


@pytest.fixture
def teams_app(make_settings, register_for):
    """An app with teams configured, and an active flag managed by u.manager of team north."""
    app = create_app(
        make_settings(lookup={"teams": {"north": ["u.north", "u.manager"], "south": ["u.south"]}})
    )
    try:
        with register_for(app) as (session, ring):
            flag = factories.flag(session, ring, factories.subject(session, "customer", "CRM-1"))
        yield app, flag
    finally:
        app.extensions["forewarn"].database.dispose()


def signed_in(app, launch_token, user: str, role: str) -> dict:
    token = launch_token(user, (role,))
    response = app.test_client().post("/auth/launch", json={"token": token})
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def test_details_outside_the_readers_team_raise_an_alert(teams_app, launch_token) -> None:
    app, flag = teams_app
    client = app.test_client()
    for user in ("u.north", "u.south"):
        own = signed_in(app, launch_token, user, "visiting_officer")
        client.post(GRANTS.format("CRM-1"), json=NEED, headers=own)
        assert client.get(f"/api/v1/flags/{flag.id}/details", headers=own).status_code == 200
    # Refused: no grant, so nothing is read and nothing raised.
    stranger = signed_in(app, launch_token, "u.south2", "visiting_officer")
    assert client.get(f"/api/v1/flags/{flag.id}/details", headers=stranger).status_code == 403
    body = client.get(
        "/api/v1/alerts",
        query_string={"kind": "outside_team"},
        headers=signed_in(app, launch_token, "u.a", "auditor"),
    ).get_json()
    [alert] = body["alerts"]
    assert (alert["user_id"], alert["flag_id"]) == ("u.south", flag.id)
    assert alert["subject"] == {"kind": "customer", "ref": "CRM-1"}


def test_details_whose_alert_cannot_be_written_are_not_disclosed(
    teams_app, launch_token, database_url
) -> None:
    app, flag = teams_app
    client = app.test_client()
    own = signed_in(app, launch_token, "u.south", "visiting_officer")
    client.post(GRANTS.format("CRM-1"), json=NEED, headers=own)
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE privacy_alerts RENAME TO privacy_alerts_away"))
        response = client.get(f"/api/v1/flags/{flag.id}/details", headers=own)
    finally:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE privacy_alerts_away RENAME TO privacy_alerts"))
        engine.dispose()
    assert response.status_code == 503
    assert "Punched" not in response.get_data(as_text=True)
    assert client.get(f"/api/v1/flags/{flag.id}/details", headers=own).status_code == 200


def test_alerts_are_for_auditors_only_and_filters_are_checked(client, auth_headers) -> None:
    for role in ("agent", "visiting_officer", "admin", "senior_manager"):
        assert client.get("/api/v1/alerts", headers=auth_headers(role)).status_code == 403
    response = client.get(
        "/api/v1/alerts", query_string={"kind": "nosy"}, headers=auth_headers("auditor")
    )
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "kind"
