"""OIDC single sign-on against a real provider (panva/oidc-provider on Node), over real HTTP."""

from __future__ import annotations

import html
import itertools
import re
import time
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, quote, urlencode, urljoin, urlsplit, urlunsplit

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from sidecar import create_app
from sidecar.audit.models import AuditEntry
from sidecar.runtime import StartupError
from sidecar.storage.keys import KeyFiles

SECRET_ENV = "FOREWARN_TEST_OIDC_SECRET"


@pytest.fixture
def sso(
    make_settings, live_server, oidc_provider, monkeypatch, request
) -> Iterator[Callable[..., Flask]]:
    """Serve an SSO-enabled demo app at the live server's address.

    `userinfo_only=True` signs in at a provider that releases the scopes' claims only from
    its userinfo endpoint, as oidc-provider does by default.
    """
    dispatch, base = live_server
    monkeypatch.setenv(SECRET_ENV, oidc_provider.client_secret)
    apps: list[Flask] = []

    def serve(userinfo_only: bool = False, identity: dict | None = None, **oidc: object) -> Flask:
        provider = (
            request.getfixturevalue("oidc_provider_userinfo") if userinfo_only else oidc_provider
        )
        settings = make_settings(
            deployment={"public_url": base},
            identity={
                "oidc": {
                    "enabled": True,
                    "issuer": provider.issuer,
                    "client_id": provider.client_id,
                    "client_secret_env": SECRET_ENV,
                    "scopes": "openid profile groups",
                    "role_claim": "groups",
                }
                | oidc
            }
            | (identity or {}),
        )
        app = create_app(settings)
        apps.append(app)
        dispatch.app = app
        return app

    yield serve
    for app in apps:
        app.extensions["forewarn"].database.dispose()


def refusals(app: Flask) -> list[tuple[str | None, str]]:
    """The refused OIDC sign-ins in the audit trail as (account named, reason)."""
    return [
        (actor, reason or "")
        for action, outcome, reason, actor, via in audit_entries(app)
        if action == "sign_in" and outcome == "denied" and via == "oidc"
    ]


def audit_entries(app: Flask) -> list[tuple[str, str, str | None, str | None, str | None]]:
    with app.extensions["forewarn"].database.transaction() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.seq))
        return [(e.action, e.outcome, e.outcome_reason, e.actor_id, e.via) for e in rows]


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


def through_provider(
    http: requests.Session,
    base: str,
    login: str,
    tamper: Callable[[str], str] | None = None,
    start_at: str = "/auth/login",
) -> str:
    """Start at /auth/login, sign in and consent at the provider; return the callback URL."""
    start = http.get(f"{base}{start_at}", allow_redirects=False, timeout=10)
    assert start.status_code == 302, start.text
    url = start.headers["Location"]
    if tamper:
        url = tamper(url)
    for _ in range(12):
        response = http.get(url, allow_redirects=False, timeout=10)
        while response.is_redirect:
            url = urljoin(url, response.headers["Location"])
            if url.startswith(f"{base}/auth/callback"):
                return url
            response = http.get(url, allow_redirects=False, timeout=10)
        assert response.status_code == 200, response.text[:500]
        page = response.text
        action = urljoin(url, html.unescape(re.search(r'<form[^>]*action="([^"]+)"', page)[1]))
        prompt = re.search(r'name="prompt" value="(\w+)"', page)[1]
        form = {"prompt": prompt}
        if prompt == "login":
            form |= {"login": login, "password": "any"}
        response = http.post(action, data=form, allow_redirects=False, timeout=10)
        assert response.is_redirect, response.text[:500]
        url = urljoin(action, response.headers["Location"])
        if url.startswith(f"{base}/auth/callback"):
            return url
    raise AssertionError("the provider never redirected back")


def test_full_sign_in_with_pkce_state_and_nonce(sso, live_server) -> None:
    sso()
    _, base = live_server
    http = requests.Session()
    start = http.get(f"{base}/auth/login", allow_redirects=False, timeout=10)
    request = parse_qs(urlsplit(start.headers["Location"]).query)
    assert request["code_challenge_method"] == ["S256"] and request["code_challenge"]
    assert request["state"] and request["nonce"] and request["response_type"] == ["code"]
    assert request["redirect_uri"] == [f"{base}/auth/callback"]

    callback = through_provider(http, base, "u.vo")
    done = http.get(callback, allow_redirects=False, timeout=10)
    assert done.status_code == 303, done.text
    assert done.headers["Location"] == "/"
    me = http.get(f"{base}/auth/session", timeout=10).json()
    assert me["user"] == {"id": "u.vo", "name": "Val Officer", "roles": ["visiting_officer"]}
    assert me["via"] == "oidc"


@pytest.mark.parametrize(
    "asked, landing",
    [
        ("/embed?kind=customer", "/embed?kind=customer"),
        ("//evil", "/"),
        ("/\t/evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/x", "/"),
    ],
)
def test_next_is_kept_only_when_it_is_a_local_path(sso, live_server, asked, landing) -> None:
    sso()
    _, base = live_server
    http = requests.Session()
    url = through_provider(http, base, "u.vo", start_at=f"/auth/login?next={quote(asked)}")
    done = http.get(url, allow_redirects=False, timeout=10)
    assert done.status_code == 303, done.text
    assert done.headers["Location"] == landing


def test_next_with_a_line_break_is_refused_before_the_provider_is_asked(sso, live_server) -> None:
    app = sso()
    _, base = live_server
    http = requests.Session()
    asked = quote("/x\r\nSet-Cookie: a=b")
    response = http.get(f"{base}/auth/login?next={asked}", allow_redirects=False, timeout=10)
    assert response.status_code == 400
    assert "next" in response.json()["detail"]
    assert http.get(f"{base}/auth/session", timeout=10).status_code == 401
    assert audit_entries(app) == []


def test_callback_replayed_is_refused(sso, live_server) -> None:
    app = sso()
    _, base = live_server
    http = requests.Session()
    callback = through_provider(http, base, "u.vo")
    assert http.get(callback, allow_redirects=False, timeout=10).status_code == 303
    again = requests.Session().get(callback, allow_redirects=False, timeout=10)
    assert again.status_code == 401
    [(account, reason)] = refusals(app)
    assert account is None and "state" in reason


def test_code_used_twice_is_an_invalid_grant_and_recorded(sso, live_server) -> None:
    app = sso()
    _, base = live_server
    http = requests.Session()
    callback = through_provider(http, base, "u.vo")
    assert http.get(callback, allow_redirects=False, timeout=10).status_code == 303
    # The same browser brings the code back with a fresh state of its own.
    second = through_provider(http, base, "u.vo")
    code = parse_qs(urlsplit(callback).query)["code"][0]
    response = http.get(with_query(second, code=code), allow_redirects=False, timeout=10)
    assert response.status_code == 401
    [(_, reason)] = refusals(app)
    assert "invalid_grant" in reason


def test_bad_state_is_refused(sso, live_server) -> None:
    app = sso()
    _, base = live_server
    http = requests.Session()
    callback = through_provider(http, base, "u.vo")
    response = http.get(with_query(callback, state="forged-state"), timeout=10)
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"
    assert "state" in response.json()["detail"]
    assert http.get(f"{base}/auth/session", timeout=10).status_code == 401
    [(_, reason)] = refusals(app)
    assert "state" in reason


def test_a_callback_without_state_is_recorded(sso, live_server) -> None:
    app = sso()
    _, base = live_server
    assert requests.get(f"{base}/auth/callback?code=x", timeout=10).status_code == 400
    assert refusals(app) == [(None, "the callback carries no state")]


def test_callback_in_another_browser_is_refused(sso, live_server) -> None:
    # Login CSRF: an attacker's own code and state, delivered into the victim's browser.
    sso()
    _, base = live_server
    callback = through_provider(requests.Session(), base, "u.vo")
    victim = requests.Session()
    assert victim.get(callback, allow_redirects=False, timeout=10).status_code == 401


@pytest.mark.parametrize(
    "iss, fragment",
    [("https://elsewhere.example", "another issuer"), (None, "carries no iss")],
)
def test_a_callback_whose_iss_is_not_our_issuer_is_refused(
    sso, live_server, oidc_provider, iss, fragment
) -> None:
    # RFC 9207: oidc-provider sends iss with every authorization response and says so.
    app = sso()
    _, base = live_server
    http = requests.Session()
    callback = through_provider(http, base, "u.vo")
    assert parse_qs(urlsplit(callback).query)["iss"] == [oidc_provider.issuer]
    parts = urlsplit(callback)
    query = {k: v[0] for k, v in parse_qs(parts.query).items() if k != "iss"}
    if iss is not None:
        query["iss"] = iss
    tampered = urlunsplit(parts._replace(query=urlencode(query)))
    response = http.get(tampered, allow_redirects=False, timeout=10)
    assert response.status_code == 401, response.text
    assert fragment in response.json()["detail"]
    assert http.get(f"{base}/auth/session", timeout=10).status_code == 401
    [(_, reason)] = refusals(app)
    assert fragment in reason


def test_wrong_nonce_is_refused(sso, live_server) -> None:
    app = sso()
    _, base = live_server
    http = requests.Session()
    callback = through_provider(
        http, base, "u.vo", tamper=lambda url: with_query(url, nonce="attacker-nonce")
    )
    response = http.get(callback, allow_redirects=False, timeout=10)
    assert response.status_code == 401, response.text
    assert "nonce" in response.json()["detail"]
    assert http.get(f"{base}/auth/session", timeout=10).status_code == 401
    [(account, reason)] = refusals(app)
    assert account == "u.vo" and "nonce" in reason and "not verified" in reason


@pytest.mark.parametrize(
    "client_id, fragment",
    [("forewarn-bad-signature", "signature"), ("forewarn-wrong-issuer", "iss")],
)
def test_a_forged_or_misissued_id_token_is_refused_and_recorded(
    sso, live_server, client_id, fragment
) -> None:
    app = sso(client_id=client_id)
    _, base = live_server
    http = requests.Session()
    response = http.get(through_provider(http, base, "u.vo"), allow_redirects=False, timeout=10)
    assert response.status_code == 401, response.text
    assert fragment in response.json()["detail"]
    assert http.get(f"{base}/auth/session", timeout=10).status_code == 401
    [(account, reason)] = refusals(app)
    assert account == "u.vo" and fragment in reason


def test_a_malformed_groups_claim_is_refused_and_recorded(sso, live_server) -> None:
    app = sso()
    _, base = live_server
    http = requests.Session()
    response = http.get(through_provider(http, base, "u.odd"), allow_redirects=False, timeout=10)
    assert response.status_code == 401, response.text
    assert refusals(app) == [("u.odd", "roles and groups must be a string or a list of strings")]


def test_code_issued_for_another_audience_is_refused(sso, live_server) -> None:
    # The provider signs an ID token for "other-app"; Forewarn must not accept it.
    app = sso()
    _, base = live_server
    http = requests.Session()
    callback = through_provider(
        http, base, "u.vo", tamper=lambda url: with_query(url, client_id="other-app")
    )
    response = http.get(callback, allow_redirects=False, timeout=10)
    assert response.status_code == 401, response.text
    assert "invalid_grant" in response.json()["detail"]
    assert http.get(f"{base}/auth/session", timeout=10).status_code == 401
    [(_, reason)] = refusals(app)
    assert "invalid_grant" in reason


@pytest.mark.parametrize(
    "client_id, claim",
    [("forewarn-azp-only", "aud"), ("forewarn-two-audiences", "azp")],
)
def test_an_id_token_not_addressed_to_us_is_refused(sso, live_server, client_id, claim) -> None:
    # forewarn-azp-only: aud ["other-app"], azp names us. forewarn-two-audiences: aud names us
    # and other-app, azp names other-app. Neither is ours (OpenID Connect Core 3.1.3.7).
    app = sso(client_id=client_id)
    _, base = live_server
    http = requests.Session()
    response = http.get(through_provider(http, base, "u.vo"), allow_redirects=False, timeout=10)
    assert response.status_code == 401, response.text
    assert claim in response.json()["detail"]
    assert http.get(f"{base}/auth/session", timeout=10).status_code == 401
    [(account, reason)] = refusals(app)
    assert account == "u.vo" and claim in reason


def test_control_an_id_token_for_us_and_another_audience_with_azp_us_signs_in(
    sso, live_server
) -> None:
    sso(client_id="forewarn-two-audiences-azp")
    _, base = live_server
    http = requests.Session()
    done = http.get(through_provider(http, base, "u.vo"), allow_redirects=False, timeout=10)
    assert done.status_code == 303, done.text


def test_control_the_other_client_signs_in_when_it_is_the_configured_one(
    sso, live_server, monkeypatch
) -> None:
    # The control for the test above: the provider does serve "other-app", so the refusal
    # there comes from the audience not being Forewarn's, not from a broken flow.
    monkeypatch.setenv(SECRET_ENV, "other-secret")
    sso(client_id="other-app")
    _, base = live_server
    http = requests.Session()
    done = http.get(through_provider(http, base, "u.vo"), allow_redirects=False, timeout=10)
    assert done.status_code == 303


def test_user_whose_groups_map_to_no_role_is_refused(sso, live_server) -> None:
    app = sso()
    _, base = live_server
    http = requests.Session()
    response = http.get(through_provider(http, base, "u.parks"), timeout=10)
    assert response.status_code == 403
    assert response.json()["type"].endswith("/no-role")
    [(account, reason)] = refusals(app)
    assert account == "u.parks" and "no Forewarn role" in reason


def test_roles_and_name_missing_from_the_id_token_are_read_from_userinfo(sso, live_server) -> None:
    sso(userinfo_only=True)
    _, base = live_server
    http = requests.Session()
    done = http.get(through_provider(http, base, "u.vo"), allow_redirects=False, timeout=10)
    assert done.status_code == 303, done.text
    me = http.get(f"{base}/auth/session", timeout=10).json()
    assert me["user"] == {"id": "u.vo", "name": "Val Officer", "roles": ["visiting_officer"]}


@pytest.mark.parametrize("userinfo_only", [False, True])
def test_a_role_claim_released_nowhere_is_refused_naming_the_claim(
    sso, live_server, userinfo_only
) -> None:
    app = sso(userinfo_only=userinfo_only)
    _, base = live_server
    http = requests.Session()
    response = http.get(through_provider(http, base, "u.nogroups"), timeout=10)
    assert response.status_code == 403
    assert "'groups' claim" in response.json()["detail"]
    assert http.get(f"{base}/auth/session", timeout=10).status_code == 401
    [(account, reason)] = refusals(app)
    assert account == "u.nogroups" and "'groups' claim" in reason


class TestProviderKeys:
    """The provider's key set is read again on its cache lifetime and on an unknown key id."""

    @pytest.fixture
    def jwks_fetches(self, oidc_provider) -> Iterator[Callable[..., int]]:
        def fetches(**control: str) -> int:
            url = f"{oidc_provider.issuer}/__test/jwks"
            return requests.get(url, params=control, timeout=10).json()["fetches"]

        yield fetches
        fetches(max_age="")

    @staticmethod
    def sign_in(base: str) -> int:
        http = requests.Session()
        url = through_provider(http, base, "u.vo")
        return http.get(url, allow_redirects=False, timeout=10).status_code

    def test_keys_are_read_again_once_their_max_age_has_passed(
        self, sso, live_server, jwks_fetches
    ) -> None:
        sso()
        _, base = live_server
        before = jwks_fetches(max_age="3")
        assert self.sign_in(base) == 303
        assert self.sign_in(base) == 303
        assert jwks_fetches() == before + 1  # kept while fresh
        time.sleep(3.2)
        assert self.sign_in(base) == 303
        assert jwks_fetches() == before + 2

    def test_an_unknown_key_id_refetches_at_most_once_per_interval(
        self, sso, live_server, jwks_fetches
    ) -> None:
        sso(client_id="forewarn-unknown-key", identity={"jwks_refresh_min_seconds": 2})
        _, base = live_server
        counts = [jwks_fetches()]
        for pause in (0, 0, 2.2):
            time.sleep(pause)
            assert self.sign_in(base) == 401
            counts.append(jwks_fetches())
        # The first read, none while the interval runs, one more once it has passed.
        assert [b - a for a, b in itertools.pairwise(counts)] == [1, 0, 1]


def test_provider_naming_another_issuer_is_refused(sso, live_server, oidc_provider) -> None:
    sso(issuer=oidc_provider.issuer.replace("127.0.0.1", "localhost"))
    _, base = live_server
    response = requests.get(f"{base}/auth/login", allow_redirects=False, timeout=10)
    assert response.status_code in (502, 503)


def test_sso_not_configured_is_404(client) -> None:
    assert client.get("/auth/login").status_code == 404
    assert client.get("/auth/callback?state=x&code=y").status_code == 404


def test_enabled_without_the_secret_refuses_to_start(make_settings, monkeypatch) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    settings = make_settings(
        identity={
            "oidc": {
                "enabled": True,
                "issuer": "https://login.example",
                "client_id": "forewarn",
                "client_secret_env": SECRET_ENV,
            }
        }
    )
    with pytest.raises(StartupError, match=SECRET_ENV):
        create_app(settings)


@pytest.mark.parametrize("issuer", ["http://login.council.example", "http://127.0.0.1:8080"])
def test_a_plain_http_issuer_in_production_refuses_to_start(
    make_settings, instance_dir, monkeypatch, issuer
) -> None:
    (instance_dir / "DEMO").unlink()
    KeyFiles.of(instance_dir).launch_demo_key.unlink()
    monkeypatch.setenv(SECRET_ENV, "secret")
    settings = make_settings(
        deployment={"production": True, "public_url": "https://forewarn.council.example"},
        identity={
            "launch_issuer": "https://crm.council.example",
            "oidc": {
                "enabled": True,
                "issuer": issuer,
                "client_id": "forewarn",
                "client_secret_env": SECRET_ENV,
            },
        },
    )
    with pytest.raises(StartupError, match=r"identity\.oidc\.issuer.*https"):
        create_app(settings)
    https = settings.identity.oidc.model_copy(update={"issuer": "https://login.council.example"})
    identity = settings.identity.model_copy(update={"oidc": https})
    create_app(settings.model_copy(update={"identity": identity})).extensions[
        "forewarn"
    ].database.dispose()
