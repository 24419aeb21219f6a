"""Session cookies: attributes in production and demo, timeouts, CSRF, and the demo sign-in."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select

from sidecar import create_app
from sidecar.audit.models import AuditEntry
from sidecar.cli.main import cli
from sidecar.identity.sessions import CSRF_HEADER, SEEN_AT, SIGNED_IN_AT
from tests.conftest import CONFIG


@pytest.fixture
def production_like(make_settings, instance_dir: Path):
    """A non-demo instance served at an https URL, as a council deploys it."""
    (instance_dir / "DEMO").unlink()
    apps: list[Flask] = []

    def build(**identity: object) -> Flask:
        settings = make_settings(
            deployment={"public_url": "https://forewarn.council.example"}, identity=identity
        )
        app = create_app(settings)
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["forewarn"].database.dispose()


def set_cookie_header(response) -> str:
    headers = [h for h in response.headers.getlist("Set-Cookie") if "session" in h]
    assert len(headers) == 1, headers
    return headers[0]


def attributes(header: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}


def test_embedded_production_cookie_is_host_prefixed_secure_none_partitioned(
    production_like, mint
) -> None:
    app = production_like()
    response = app.test_client().post(
        "/auth/launch", json={"token": mint(aud="https://forewarn.council.example")}
    )
    assert response.status_code == 200, response.get_json()
    header = set_cookie_header(response)
    assert header.startswith("__Host-forewarn_session=")
    assert {"secure", "httponly", "partitioned", "path"} <= attributes(header)
    assert "SameSite=None" in header and "Path=/" in header
    assert "domain" not in attributes(header)  # __Host- forbids Domain


def test_without_embedding_the_cookie_is_samesite_lax_and_unpartitioned(
    production_like, mint
) -> None:
    app = production_like(embedding=False)
    response = app.test_client().post(
        "/auth/launch", json={"token": mint(aud="https://forewarn.council.example")}
    )
    header = set_cookie_header(response)
    assert header.startswith("__Host-forewarn_session=")
    assert "SameSite=Lax" in header and "partitioned" not in attributes(header)


def test_secure_cookie_session_works_over_https(production_like, mint) -> None:
    app = production_like()
    client = app.test_client()
    token = mint(aud="https://forewarn.council.example")
    client.post("/auth/launch", json={"token": token}, base_url="https://forewarn.council.example")
    response = client.get("/auth/session", base_url="https://forewarn.council.example")
    assert response.status_code == 200
    assert response.get_json()["user"]["id"] == "u.vo"


def test_demo_over_http_uses_a_plain_cookie_that_a_real_browser_client_keeps(
    app, live_server, mint
) -> None:
    dispatch, base = live_server
    demo = create_app(
        app.extensions["forewarn"].settings.model_copy(
            update={
                "deployment": app.extensions["forewarn"].settings.deployment.model_copy(
                    update={"public_url": base}
                )
            }
        )
    )
    dispatch.app = demo
    try:
        http = requests.Session()
        response = http.post(f"{base}/auth/launch", json={"token": mint(aud=base)}, timeout=10)
        assert response.status_code == 200, response.text
        header = response.headers["Set-Cookie"]
        assert header.startswith("forewarn_demo_session=")
        assert "secure" not in attributes(header) and "SameSite=Lax" in header
        me = http.get(f"{base}/auth/session", timeout=10)
        assert me.status_code == 200 and me.json()["user"]["id"] == "u.vo"
    finally:
        demo.extensions["forewarn"].database.dispose()


def _age_session(app: Flask, client, **seconds_ago: float) -> None:
    """Rewrite the signed session cookie as the app itself would, with older timestamps."""
    serializer = app.session_interface.get_signing_serializer(app)
    name = app.config["SESSION_COOKIE_NAME"]
    cookie = client.get_cookie(name)
    data = serializer.loads(cookie.value)
    now = time.time()
    for key, ago in seconds_ago.items():
        data[{"signed_in": SIGNED_IN_AT, "seen": SEEN_AT}[key]] = now - ago
    client.set_cookie(name, serializer.dumps(data))


def test_idle_session_expires(make_settings, mint) -> None:
    app = create_app(make_settings(identity={"session_idle_seconds": 600}))
    client = app.test_client()
    try:
        client.post("/auth/launch", json={"token": mint()})
        _age_session(app, client, seen=599)
        assert client.get("/auth/session").status_code == 200  # activity renews it
        _age_session(app, client, seen=601)
        response = client.get("/auth/session")
        assert response.status_code == 401
        assert client.get("/auth/session").status_code == 401  # and it stays ended
    finally:
        app.extensions["forewarn"].database.dispose()


def test_absolute_session_limit_holds_however_active(make_settings, mint) -> None:
    app = create_app(
        make_settings(identity={"session_idle_seconds": 600, "session_absolute_seconds": 3600})
    )
    client = app.test_client()
    try:
        client.post("/auth/launch", json={"token": mint()})
        _age_session(app, client, signed_in=3599, seen=1)
        assert client.get("/auth/session").status_code == 200
        _age_session(app, client, signed_in=3601, seen=1)
        assert client.get("/auth/session").status_code == 401
    finally:
        app.extensions["forewarn"].database.dispose()


def test_idle_timeout_passes_in_real_time(make_settings, mint) -> None:
    app = create_app(make_settings(identity={"session_idle_seconds": 1}))
    client = app.test_client()
    try:
        client.post("/auth/launch", json={"token": mint()})
        assert client.get("/auth/session").status_code == 200
        time.sleep(1.2)
        assert client.get("/auth/session").status_code == 401
    finally:
        app.extensions["forewarn"].database.dispose()


class TestCsrf:
    def test_cookie_request_without_the_token_is_refused(self, client, mint) -> None:
        client.post("/auth/launch", json={"token": mint()})
        response = client.post("/auth/logout")
        assert response.status_code == 403
        assert response.get_json()["type"].endswith("/csrf-token-missing")
        assert client.get("/auth/session").status_code == 200  # still signed in

    def test_cookie_request_with_a_wrong_token_is_refused(self, client, mint) -> None:
        client.post("/auth/launch", json={"token": mint()})
        assert client.post("/auth/logout", headers={CSRF_HEADER: "guess"}).status_code == 403

    def test_cookie_request_with_the_token_passes(self, client, mint) -> None:
        csrf = client.post("/auth/launch", json={"token": mint()}).get_json()["csrf_token"]
        assert client.get("/auth/session").get_json()["csrf_token"] == csrf
        assert client.post("/auth/logout", headers={CSRF_HEADER: csrf}).status_code == 204
        assert client.get("/auth/session").status_code == 401

    def test_bearer_requests_need_no_csrf_token(self, client, mint) -> None:
        body = client.post("/auth/launch", json={"token": mint()}).get_json()
        bearer = {"Authorization": f"Bearer {body['access_token']}"}
        # The cookie is also sent, but the header alone authenticates, so no CSRF applies.
        assert client.post("/auth/logout", headers=bearer).status_code == 204

    def test_a_bad_bearer_header_is_not_rescued_by_the_cookie(self, client, mint) -> None:
        client.post("/auth/launch", json={"token": mint()})
        response = client.get("/auth/session", headers={"Authorization": "Bearer forged"})
        assert response.status_code == 401

    def test_a_new_sign_in_gets_a_new_csrf_token(self, client, mint) -> None:
        first = client.post("/auth/launch", json={"token": mint()}).get_json()["csrf_token"]
        second = client.post("/auth/launch", json={"token": mint()}).get_json()["csrf_token"]
        assert first != second
        assert client.post("/auth/logout", headers={CSRF_HEADER: first}).status_code == 403


class TestDemoSignIn:
    def test_works_on_a_demo_instance(self, client) -> None:
        response = client.post(
            "/auth/demo", json={"user": "demo.vo", "name": "Demo VO", "roles": ["visiting_officer"]}
        )
        assert response.status_code == 200
        assert response.get_json()["user"]["roles"] == ["visiting_officer"]
        assert client.get("/auth/session").get_json()["via"] == "demo"

    def test_unknown_role_is_422(self, client) -> None:
        response = client.post("/auth/demo", json={"user": "d", "roles": ["root"]})
        assert response.status_code == 422 and "root" in response.get_json()["detail"]

    def test_does_not_exist_outside_demo_mode(self, production_like) -> None:
        app = production_like()
        response = app.test_client().post("/auth/demo", json={"user": "d", "roles": ["admin"]})
        assert response.status_code == 404


class TestEndedSessions:
    """A session ends server-side: its cookie and its access tokens stop working everywhere."""

    @pytest.fixture
    def two_instances(self, settings) -> Iterator[tuple[Flask, Flask]]:
        first, second = create_app(settings), create_app(settings)
        yield first, second
        for app in (first, second):
            app.extensions["forewarn"].database.dispose()

    @staticmethod
    def copy_cookie(source, target, app: Flask) -> None:
        name = app.config["SESSION_COOKIE_NAME"]
        target.set_cookie(name, source.get_cookie(name).value)

    def test_a_cookie_copied_before_logout_is_refused_after_it_by_every_instance(
        self, two_instances, mint
    ) -> None:
        first, second = two_instances
        browser = first.test_client()
        csrf = browser.post("/auth/launch", json={"token": mint()}).get_json()["csrf_token"]
        copies = [first.test_client(), second.test_client()]
        for copy in copies:
            self.copy_cookie(browser, copy, first)
            assert copy.get("/auth/session").status_code == 200

        assert browser.post("/auth/logout", headers={CSRF_HEADER: csrf}).status_code == 204
        for copy in copies:
            response = copy.get("/auth/session")
            assert response.status_code == 401, response.get_json()
            banner = copy.get("/api/v1/subjects/customer/CRM-1/banner")
            assert banner.status_code == 401
            # Nor is the ended session given a fresh cookie: at most one that deletes it.
            name = first.config["SESSION_COOKIE_NAME"]
            for header in banner.headers.getlist("Set-Cookie") + response.headers.getlist(
                "Set-Cookie"
            ):
                assert header.startswith(f"{name}=;"), header

    def test_logout_on_one_instance_ends_the_cookie_on_the_other(self, two_instances, mint) -> None:
        first, second = two_instances
        browser = first.test_client()
        browser.post("/auth/launch", json={"token": mint()})
        on_second = second.test_client()
        self.copy_cookie(browser, on_second, first)
        csrf = on_second.get("/auth/session").get_json()["csrf_token"]
        assert on_second.post("/auth/logout", headers={CSRF_HEADER: csrf}).status_code == 204
        assert browser.get("/auth/session").status_code == 401

    def test_access_tokens_die_with_the_session_that_minted_them(self, two_instances, mint) -> None:
        first, second = two_instances
        browser = first.test_client()
        body = browser.post("/auth/launch", json={"token": mint()}).get_json()
        bearer = {"Authorization": f"Bearer {body['access_token']}"}
        banner = "/api/v1/subjects/customer/CRM-1/banner"
        assert second.test_client().get(banner, headers=bearer).status_code == 200

        browser.post("/auth/logout", headers={CSRF_HEADER: body["csrf_token"]})
        for app in (first, second):
            response = app.test_client().get(banner, headers=bearer)
            assert response.status_code == 401
            assert response.mimetype == "application/problem+json"

    def test_logout_with_the_bearer_token_ends_its_session(self, client, mint) -> None:
        body = client.post("/auth/launch", json={"token": mint()}).get_json()
        bearer = {"Authorization": f"Bearer {body['access_token']}"}
        assert client.post("/auth/logout", headers=bearer).status_code == 204
        assert client.get("/auth/session", headers=bearer).status_code == 401
        assert client.get("/auth/session").status_code == 401  # the cookie of that sign-in too

    def test_an_administrator_ends_every_session_of_one_user(
        self, two_instances, mint, instance_dir: Path, database_url: str
    ) -> None:
        first, second = two_instances
        leaver = [first.test_client(), second.test_client()]
        tokens = []
        for browser in leaver:
            body = browser.post("/auth/launch", json={"token": mint()}).get_json()
            tokens.append({"Authorization": f"Bearer {body['access_token']}"})
        colleague = first.test_client()
        colleague.post("/auth/launch", json={"token": mint(sub="u.colleague")})

        result = CliRunner().invoke(
            cli,
            ["--instance", str(instance_dir), "sessions", "end", "--user", "u.vo"],
            env={"FOREWARN_CONFIG": str(CONFIG), "FOREWARN_DATABASE_URL": database_url},
        )
        assert result.exit_code == 0, result.output
        assert "ended 2 sessions of u.vo" in result.output

        for browser, bearer in zip(leaver, tokens, strict=True):
            assert browser.get("/auth/session").status_code == 401
            assert second.test_client().get("/auth/session", headers=bearer).status_code == 401
        assert colleague.get("/auth/session").get_json()["user"]["id"] == "u.colleague"
        with first.extensions["forewarn"].database.transaction() as session:
            entry = session.scalars(
                select(AuditEntry).where(AuditEntry.action == "sessions.end")
            ).one()
        assert entry.actor_id.startswith("cli:") and "u.vo" in entry.outcome_reason

    def test_ending_the_sessions_of_someone_with_none_says_so(
        self, app, instance_dir: Path, database_url: str
    ) -> None:
        result = CliRunner().invoke(
            cli,
            ["--instance", str(instance_dir), "sessions", "end", "--user", "u.nobody"],
            env={"FOREWARN_CONFIG": str(CONFIG), "FOREWARN_DATABASE_URL": database_url},
        )
        assert result.exit_code == 0, result.output
        assert "ended 0 sessions of u.nobody" in result.output
