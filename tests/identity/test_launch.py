"""CRM launch tokens: what signs staff in, and every forgery, replay and mistake that must not."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from sidecar import create_app
from sidecar.identity import staff_sessions
from sidecar.runtime import StartupError
from sidecar.storage.keys import KeyFiles


def launch(client, token: str):
    return client.post("/auth/launch", json={"token": token})


def refused(response, fragment: str) -> None:
    assert response.status_code == 401, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert fragment in response.get_json()["detail"]


@pytest.mark.parametrize("alg", ["ES256", "RS256", "EdDSA"])
def test_each_accepted_algorithm_signs_in(client, mint, alg) -> None:
    response = launch(client, mint(alg))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["user"] == {"id": "u.vo", "name": "Val Officer", "roles": ["visiting_officer"]}
    session = client.get("/auth/session").get_json()
    assert session["user"]["id"] == "u.vo" and session["via"] == "widget"
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get("/auth/session", headers=bearer).get_json()["user"]["id"] == "u.vo"


def _unsigned(header: dict, claims: dict) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}."


def test_alg_none_is_refused(client, settings) -> None:
    now = int(time.time())
    claims = {"sub": "u.x", "roles": ["auditor"], "aud": settings.deployment.public_url}
    claims |= {"iat": now, "exp": now + 60, "jti": uuid.uuid4().hex}
    for alg in ("none", "None", "NONE"):
        token = _unsigned({"alg": alg, "kid": "crm-es256", "typ": "JWT"}, claims)
        refused(launch(client, token), "algorithm")


def test_hmac_signed_with_the_public_key_is_refused(client, settings, crm_keys) -> None:
    # Algorithm confusion: an attacker "signs" with HMAC using the published public key.
    public = json.dumps(crm_keys["ES256"].public_jwk).encode()
    now = int(time.time())
    claims = {"sub": "u.x", "roles": ["admin"], "aud": settings.deployment.public_url}
    claims |= {"iat": now, "exp": now + 60, "jti": uuid.uuid4().hex}
    for alg, digest in (("HS256", hashlib.sha256), ("HS512", hashlib.sha512)):
        unsigned = _unsigned({"alg": alg, "kid": "crm-es256", "typ": "JWT"}, claims)[:-1]
        mac = hmac.new(public, unsigned.encode(), digest).digest()
        token = unsigned + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
        refused(launch(client, token), f"algorithm '{alg}' refused")


def test_algorithm_must_match_the_named_key(client, mint, crm_keys, settings) -> None:
    # An RS256 token naming the ES256 key id: the key decides the algorithm, not the header.
    now = int(time.time())
    claims = {"sub": "u.x", "roles": ["agent"], "aud": settings.deployment.public_url}
    claims |= {"iat": now, "exp": now + 60, "jti": uuid.uuid4().hex}
    token = jwt.encode(
        claims, crm_keys["RS256"].private, algorithm="RS256", headers={"kid": "crm-es256"}
    )
    refused(launch(client, token), "launch token refused")


@pytest.mark.parametrize(
    "token",
    ["", "x", "not.a.jwt", "a.b.c.d", "eyJhbGciOiJFUzI1NiJ9.e30.", "....", "\u00e9t\u00e9.x.y"],
)
def test_malformed_tokens_are_401_never_500(client, token) -> None:
    response = launch(client, token)
    if token == "":
        assert response.status_code == 401 or response.status_code == 422
    else:
        assert response.status_code == 401, response.get_json()
    assert response.mimetype == "application/problem+json"


def test_unknown_key_id_and_missing_key_id_are_refused(client, mint) -> None:
    refused(launch(client, mint(headers={"kid": "crm-retired"})), "unknown key")
    refused(launch(client, mint(headers={"kid": ""})), "names no key id")


def test_token_signed_by_another_key_under_a_known_kid_is_refused(client, settings) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    claims = {"sub": "u.x", "roles": ["agent"], "aud": settings.deployment.public_url}
    claims |= {"iat": now, "exp": now + 60, "jti": uuid.uuid4().hex}
    token = jwt.encode(claims, stranger, algorithm="ES256", headers={"kid": "crm-es256"})
    refused(launch(client, token), "Signature verification failed")


def test_expired_token_is_refused(client, mint) -> None:
    now = int(time.time())
    refused(launch(client, mint(iat=now - 200, exp=now - 60)), "expired")


def test_wrong_audience_is_refused(client, mint) -> None:
    refused(launch(client, mint(aud="https://another-sidecar.example")), "Audience")
    refused(launch(client, mint(aud=None)), "aud")


def test_lifetime_over_five_minutes_is_refused(client, mint) -> None:
    now = int(time.time())
    refused(launch(client, mint(iat=now, exp=now + 301)), "5 minutes")


def test_jti_is_required_and_must_be_sensible(client, mint) -> None:
    refused(launch(client, mint(jti=None)), "jti")
    refused(launch(client, mint(jti="short")), "jti")
    refused(launch(client, mint(jti=12345678)), "JWT ID")


def test_replayed_token_is_refused(client, mint) -> None:
    token = mint()
    assert launch(client, token).status_code == 200
    refused(launch(client, token), "already been used")


def test_replay_is_refused_by_another_instance_on_the_same_database(app, settings, mint) -> None:
    token = mint()
    assert launch(app.test_client(), token).status_code == 200
    other = create_app(settings)
    try:
        refused(launch(other.test_client(), token), "already been used")
    finally:
        other.extensions["forewarn"].database.dispose()


def test_used_token_ids_are_pruned_once_expired(app, mint) -> None:
    from sqlalchemy import func, select

    from sidecar.identity.models import UsedLaunchToken

    now = int(time.time())
    # iat in the past so exp (plus 30 s leeway) is already over when the next token arrives.
    launch(app.test_client(), mint(iat=now - 100, exp=now - 25))
    database = app.extensions["forewarn"].database
    with database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(UsedLaunchToken)) == 1
    time.sleep(5.1)
    assert launch(app.test_client(), mint()).status_code == 200
    with database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(UsedLaunchToken)) == 1


class TestRoles:
    def test_groups_map_through_config(self, client, mint) -> None:
        token = mint(roles=None, groups=["Caution Register - Visiting Officers", "All Staff"])
        assert launch(client, token).get_json()["user"]["roles"] == ["visiting_officer"]

    def test_roles_and_groups_combine(self, client, mint) -> None:
        token = mint(roles=["case_officer"], groups=["Caution Register - Contact Centre"])
        assert launch(client, token).get_json()["user"]["roles"] == ["agent", "case_officer"]

    def test_names_outside_the_map_and_vocabulary_grant_nothing(self, client, mint) -> None:
        response = launch(client, mint(roles=["superuser", "Domain Admins"]))
        assert response.status_code == 403
        assert response.get_json()["type"].endswith("/no-role")

    def test_pass_through_can_be_turned_off(self, make_settings, mint) -> None:
        app = create_app(make_settings(identity={"role_names_pass_through": False}))
        try:
            response = launch(app.test_client(), mint(roles=["admin"]))
            assert response.status_code == 403
        finally:
            app.extensions["forewarn"].database.dispose()

    def test_roles_claim_of_the_wrong_shape_is_refused(self, client, mint) -> None:
        refused(launch(client, mint(roles={"admin": True})), "roles and groups")


def test_demo_key_is_refused_outside_demo_mode(make_settings, instance_dir: Path) -> None:
    from sidecar.identity.launch import mint_launch_token

    (instance_dir / "DEMO").unlink()
    settings = make_settings()
    assert not settings.demo
    key = KeyFiles.of(instance_dir).launch_demo_key.read_bytes()
    app = create_app(settings)
    try:
        token = mint_launch_token(key, settings.deployment.public_url, "u.x", "X", ["agent"])
        refused(launch(app.test_client(), token), "demo instances only")
    finally:
        app.extensions["forewarn"].database.dispose()


CRM_ISSUER = "https://council.crm.dynamics.com"


class TestIssuer:
    @pytest.fixture
    def pinned(self, make_settings):
        app = create_app(make_settings(identity={"launch_issuer": CRM_ISSUER}))
        yield app
        app.extensions["forewarn"].database.dispose()

    def test_a_token_from_the_crm_hosts_issuer_signs_in(self, pinned, mint) -> None:
        assert launch(pinned.test_client(), mint(iss=CRM_ISSUER)).status_code == 200

    @pytest.mark.parametrize("iss", ["https://other.crm.example", None])
    def test_a_token_from_another_issuer_or_none_is_refused(self, pinned, mint, iss) -> None:
        response = launch(pinned.test_client(), mint(iss=iss))
        assert response.status_code == 401
        assert "iss" in response.get_json()["detail"].lower()


class TestProduction:
    def test_refuses_to_start_while_the_demo_key_file_exists(
        self, make_settings, instance_dir: Path
    ) -> None:
        (instance_dir / "DEMO").unlink()
        with pytest.raises(StartupError, match="demo launch key"):
            create_app(make_settings(deployment={"production": True}))

    def test_starts_with_only_the_crm_hosts_keys(
        self, make_settings, instance_dir: Path, mint
    ) -> None:
        (instance_dir / "DEMO").unlink()
        KeyFiles.of(instance_dir).launch_demo_key.unlink()
        app = create_app(
            make_settings(deployment={"production": True}, identity={"launch_issuer": CRM_ISSUER})
        )
        try:
            assert launch(app.test_client(), mint(iss=CRM_ISSUER)).status_code == 200
            demo = {"user": "u.x", "roles": ["admin"]}
            assert app.test_client().post("/auth/demo", json=demo).status_code == 404
        finally:
            app.extensions["forewarn"].database.dispose()

    def test_refuses_to_start_without_the_crm_hosts_issuer(
        self, make_settings, instance_dir: Path
    ) -> None:
        (instance_dir / "DEMO").unlink()
        KeyFiles.of(instance_dir).launch_demo_key.unlink()
        with pytest.raises(StartupError, match=r"identity\.launch_issuer"):
            create_app(make_settings(deployment={"production": True}))

    def test_refuses_to_start_without_any_launch_keys(
        self, make_settings, instance_dir: Path
    ) -> None:
        KeyFiles.of(instance_dir).launch_jwks.unlink()
        with pytest.raises(StartupError, match="launch-jwks.json are missing"):
            create_app(make_settings())


def test_tokens_never_reach_logs_or_error_messages(client, mint, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    good = mint()
    tokens = [good, good, mint(aud="https://elsewhere.example"), mint(headers={"kid": "nope"})]
    details = [launch(client, token).get_data(as_text=True) for token in tokens]
    for token in tokens:
        signature = token.rsplit(".", 1)[1]
        assert signature not in caplog.text
        assert all(signature not in body for body in details)


class JwksServer:
    """A CRM host publishing its launch keys at a JWKS URL, counting fetches."""

    def __init__(self, keys: list[dict]) -> None:
        self.keys = keys
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/jwks.json"

    def close(self) -> None:
        self.server.shutdown()


def test_jwks_url_is_cached_and_refetched_sparingly_on_unknown_kid(
    make_settings, crm_keys, mint
) -> None:
    host = JwksServer([crm_keys["ES256"].public_jwk])
    app = create_app(
        make_settings(identity={"launch_jwks_url": host.url, "jwks_refresh_min_seconds": 1})
    )
    client = app.test_client()
    try:
        assert launch(client, mint("ES256")).status_code == 200
        assert launch(client, mint("ES256")).status_code == 200
        assert host.fetches == 1  # cached

        # The CRM host rotates in a new key; a token naming it arrives at once.
        host.keys = [crm_keys["ES256"].public_jwk, crm_keys["RS256"].public_jwk]
        refused(launch(client, mint("RS256")), "unknown key")
        assert host.fetches == 1  # too soon after the last fetch to fetch again
        time.sleep(1.1)
        assert launch(client, mint("RS256")).status_code == 200
        assert host.fetches == 2

        # A flood of made-up key ids costs the CRM host at most one fetch per interval.
        time.sleep(1.1)
        for n in range(20):
            refused(launch(client, mint("ES256", headers={"kid": f"made-up-{n}"})), "unknown")
        assert host.fetches == 3
    finally:
        host.close()
        app.extensions["forewarn"].database.dispose()


def test_unreachable_jwks_url_fails_closed(make_settings, mint) -> None:
    app = create_app(make_settings(identity={"launch_jwks_url": "http://127.0.0.1:1/jwks"}))
    try:
        response = launch(app.test_client(), mint())
        assert response.status_code == 503
        assert response.get_json()["type"].endswith("/keys-unavailable")
    finally:
        app.extensions["forewarn"].database.dispose()


def test_an_access_token_stops_working_at_its_expiry_even_after_use(app, client) -> None:
    """Verified tokens are remembered, but never past the expiry they were signed with."""
    now = int(time.time())
    session_id = staff_sessions.start(app.extensions["forewarn"].database, "u.vo", "api", 3600)
    claims = {"typ": "forewarn-access", "sub": "u.vo", "name": "Val Officer", "sid": session_id}
    claims |= {"roles": ["visiting_officer"], "iat": now, "exp": now + 2, "jti": "short"}
    token = jwt.encode(claims, app.extensions["forewarn"].session_secret, algorithm="HS256")
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/auth/session", headers=bearer).get_json()["user"]["id"] == "u.vo"
    assert client.get("/api/v1/subjects/customer/CRM-1/banner", headers=bearer).status_code == 200
    time.sleep(max(0.0, now + 2 - time.time()) + 0.1)
    response = client.get("/api/v1/subjects/customer/CRM-1/banner", headers=bearer)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
