"""Privacy alerts: many grants in a day, reason 'other', details outside the reader's team."""

from __future__ import annotations

from sidecar import create_app
from tests.lookup import factories

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


def test_details_outside_the_readers_team_raise_an_alert(
    make_settings, launch_token, register_for
) -> None:
    app = create_app(
        make_settings(lookup={"teams": {"north": ["u.north", "u.manager"], "south": ["u.south"]}})
    )
    try:
        client = app.test_client()
        with register_for(app) as (session, ring):
            flag = factories.flag(session, ring, factories.subject(session, "customer", "CRM-1"))

        def headers(user: str, role: str) -> dict:
            token = launch_token(user, (role,))
            access = client.post("/auth/launch", json={"token": token}).get_json()["access_token"]
            return {"Authorization": f"Bearer {access}"}

        for user in ("u.north", "u.south"):
            own = headers(user, "visiting_officer")
            client.post(GRANTS.format("CRM-1"), json=NEED, headers=own)
            assert client.get(f"/api/v1/flags/{flag.id}/details", headers=own).status_code == 200
        body = client.get(
            "/api/v1/alerts",
            query_string={"kind": "outside_team"},
            headers=headers("u.a", "auditor"),
        ).get_json()
        [alert] = body["alerts"]
        assert (alert["user_id"], alert["flag_id"]) == ("u.south", flag.id)
    finally:
        app.extensions["forewarn"].database.dispose()


def test_alerts_are_for_auditors_only_and_filters_are_checked(client, auth_headers) -> None:
    for role in ("agent", "visiting_officer", "admin", "senior_manager"):
        assert client.get("/api/v1/alerts", headers=auth_headers(role)).status_code == 403
    response = client.get(
        "/api/v1/alerts", query_string={"kind": "nosy"}, headers=auth_headers("auditor")
    )
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "kind"
