"""The widget's files, the embed page's headers, the demo pages, and CORS for CRM origins."""

from __future__ import annotations

import re

import pytest

from sidecar import create_app

CRM = "https://council.crm11.dynamics.com"


@pytest.fixture
def crm_app(make_settings):
    app = create_app(make_settings(lookup={"crm_origins": [CRM]}))
    yield app
    app.extensions["forewarn"].database.dispose()


def test_the_widget_script_is_served_and_nothing_else_is(client) -> None:
    response = client.get("/widget/forewarn.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert 'customElements.define("forewarn-flag"' in response.get_data(as_text=True)
    assert client.get("/widget/../config/forewarn.toml").status_code == 404
    assert client.get("/widget/secrets.json").status_code == 404


def test_embed_page_headers_and_no_inline_script(crm_app) -> None:
    response = crm_app.test_client().get("/embed?kind=customer&ref=CRM-1")
    assert response.status_code == 200
    csp = dict(
        part.strip().split(" ", 1)
        for part in response.headers["Content-Security-Policy"].split(";")
    )
    assert csp["frame-ancestors"] == f"'self' {CRM}"
    assert csp["script-src"] == "'self'"
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert f'data-allowed-origins="{CRM}"' in html
    assert 'subject-ref="CRM-1"' in html


def test_embed_takes_a_posted_launch_token_into_the_page_not_the_url(crm_app) -> None:
    client = crm_app.test_client()
    response = client.post(
        "/embed?kind=customer&ref=CRM-1", data={"launch_token": "eyJ.launch.token"}
    )
    assert response.status_code == 200
    assert 'data-launch-token="eyJ.launch.token"' in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    refused = client.post("/embed?kind=customer&ref=CRM-1", data={"access_token": "x"})
    assert refused.status_code == 422


def test_embed_refuses_a_bad_subject(client) -> None:
    response = client.get("/embed?kind=vehicle&ref=1")
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "kind"
    assert client.get("/embed?kind=customer").status_code == 422


def test_cors_answers_configured_crm_origins_only_and_never_with_credentials(crm_app) -> None:
    client = crm_app.test_client()
    preflight = client.options(
        "/api/v1/subjects/customer/CRM-1/banner",
        headers={
            "Origin": CRM,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == CRM
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    launch = client.options("/auth/launch", headers={"Origin": CRM})
    assert launch.headers["Access-Control-Allow-Origin"] == CRM
    for origin in ("https://evil.example", CRM + ".evil.example", "null"):
        other = client.options(
            "/api/v1/subjects/customer/CRM-1/banner",
            headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
        )
        assert "Access-Control-Allow-Origin" not in other.headers, origin
    page = client.get("/embed?kind=customer&ref=CRM-1", headers={"Origin": CRM})
    assert "Access-Control-Allow-Origin" not in page.headers


def test_crm_origins_must_be_exact_origins(make_settings) -> None:
    from sidecar.settings import SettingsError

    for bad in ("https://*.dynamics.com", "https://crm.example/path", "crm.example"):
        with pytest.raises(SettingsError, match="lookup.crm_origins"):
            make_settings(lookup={"crm_origins": [bad]})


def test_demo_crm_page_lists_records_and_embeds_the_widget_both_ways(client, register) -> None:
    from tests import factories

    with register() as (session, _ring):
        factories.subject(session, "customer", "CRM-1001")
        factories.subject(session, "property", "100023336956")
    response = client.get("/demo/crm?kind=customer&ref=CRM-1001")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<forewarn-flag" in html and "/embed?kind=customer&amp;ref=CRM-1001" in html
    assert "Property 100023336956" in html
    assert "http://127.0.0.1:47" in html
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert "token" not in response.headers.get("Location", "")


def test_demo_token_signs_in_the_demo_user(client) -> None:
    token = client.post("/demo/launch-token", json={"persona": "visiting_officer"}).get_json()
    signed_in = client.post("/auth/launch", json={"token": token["token"]}).get_json()
    assert signed_in["user"]["roles"] == ["visiting_officer"]


def test_demo_pages_do_not_exist_outside_demo_mode(make_settings, instance_dir) -> None:
    (instance_dir / "DEMO").unlink()
    app = create_app(make_settings())
    try:
        client = app.test_client()
        assert client.get("/demo/crm").status_code == 404
        assert client.post("/demo/launch-token", json={}).status_code == 404
    finally:
        app.extensions["forewarn"].database.dispose()


def test_embed_page_hands_a_session_signed_in_on_its_site_a_bearer_token(client, launch_token):
    client.post("/auth/launch", json={"token": launch_token("u.canvas", ("visiting_officer",))})
    html = client.get("/embed?kind=customer&ref=CRM-1").get_data(as_text=True)
    [token] = re.findall(r'data-access-token="([^"]+)"', html)
    banner = client.application.test_client().get(
        "/api/v1/subjects/customer/CRM-1/banner", headers={"Authorization": f"Bearer {token}"}
    )
    assert banner.status_code == 200
    assert banner.get_json()["can_request_details"] is True


def test_embed_page_for_no_one_signed_in_carries_no_token(client) -> None:
    html = client.get("/embed?kind=customer&ref=CRM-1").get_data(as_text=True)
    assert "data-access-token" not in html and "data-launch-token" not in html


def test_a_launch_token_posted_with_a_session_cookie_needs_no_csrf_token(client, launch_token):
    client.post("/auth/launch", json={"token": launch_token()})
    response = client.post("/embed?kind=customer&ref=CRM-1", data={"launch_token": "eyJ.x.y"})
    assert response.status_code == 200


def test_demo_crm_page_on_an_empty_instance_says_so(client) -> None:
    response = client.get("/demo/crm")
    assert response.status_code == 200
    assert "forewarn init --demo" in response.get_data(as_text=True)
