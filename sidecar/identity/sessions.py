"""Session cookies: their attributes, idle and absolute timeouts, and CSRF protection."""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any

from flask import Flask, request, session

from sidecar.errors import Problem
from sidecar.settings import Settings

USER_KEY = "forewarn.user"
SESSION_ID = "forewarn.session_id"
SIGNED_IN_AT = "forewarn.signed_in_at"
SEEN_AT = "forewarn.seen_at"
CSRF_KEY = "forewarn.csrf"
CSRF_HEADER = "X-CSRF-Token"

SECURE_COOKIE = "__Host-forewarn_session"
# Only a demo instance served over plain http uses this: browsers drop Secure cookies there.
DEMO_HTTP_COOKIE = "forewarn_demo_session"

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_PROTECTED = "console"
"""Blueprint of HTML form pages: each form carries a Flask-WTF token that the console checks."""
# Sign-ins carry their own proof (a signed token or request), so they need no CSRF token.
CSRF_EXEMPT = frozenset(
    {
        "launch.launch",
        "auth.demo_sign_in",
        "canvas.salesforce_canvas",
        "oidc.callback",
        # The embed page's POST carries a launch token, the widget's sign-in proof; the demo
        # token mint exists on demo instances only and acts for fixed demo personas.
        "widget.embed",
        "widget.demo_launch_token",
    }
)


def demo_over_http(settings: Settings) -> bool:
    return settings.demo and settings.deployment.public_url.startswith("http://")


def configure_cookies(app: Flask, settings: Settings) -> None:
    """`__Host-` + Secure + HttpOnly + Path=/; SameSite=None and Partitioned when embedded."""
    if demo_over_http(settings):
        app.config.update(
            SESSION_COOKIE_NAME=DEMO_HTTP_COOKIE,
            SESSION_COOKIE_SECURE=False,
            SESSION_COOKIE_HTTPONLY=True,
            SESSION_COOKIE_SAMESITE="Lax",
            SESSION_COOKIE_PARTITIONED=False,
            SESSION_COOKIE_PATH="/",
            SESSION_COOKIE_DOMAIN=None,
        )
        return
    embedded = settings.identity.embedding
    app.config.update(
        SESSION_COOKIE_NAME=SECURE_COOKIE,
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=True,
        # Inside a CRM page on another site the cookie is third-party: None lets it travel,
        # Partitioned (CHIPS) keeps it to this CRM's partition where third-party cookies
        # are blocked. The widget itself uses bearer tokens and works without it.
        SESSION_COOKIE_SAMESITE="None" if embedded else "Lax",
        SESSION_COOKIE_PARTITIONED=embedded,
        SESSION_COOKIE_PATH="/",
        SESSION_COOKIE_DOMAIN=None,
    )


def start(user_data: dict[str, Any], session_id: str) -> str:
    """Begin a fresh cookie session for a user who just signed in; return its CSRF token.

    `session_id` names the server-side session (`staff_sessions`) the cookie stands for.
    """
    session.clear()
    now = time.time()
    session[USER_KEY] = user_data
    session[SESSION_ID] = session_id
    session[SIGNED_IN_AT] = now
    session[SEEN_AT] = now
    session[CSRF_KEY] = secrets.token_urlsafe(32)
    return session[CSRF_KEY]


def current(settings: Settings) -> dict[str, Any] | None:
    """The signed-in user's data, or None (and the session emptied) once it has timed out."""
    data = session.get(USER_KEY)
    if not data:
        return None
    now = time.time()
    identity = settings.identity
    signed_in = float(session.get(SIGNED_IN_AT, 0))
    seen = float(session.get(SEEN_AT, 0))
    if now - signed_in > identity.session_absolute_seconds or (
        now - seen > identity.session_idle_seconds
    ):
        session.clear()
        return None
    session[SEEN_AT] = now
    return data


def session_id() -> str:
    """The server-side session the cookie stands for ("" when none)."""
    return str(session.get(SESSION_ID, ""))


def forget() -> None:
    """Empty the cookie session (the response then deletes the cookie)."""
    session.clear()


def csrf_token() -> str | None:
    """The session's CSRF token, for pages and scripts that post with the cookie."""
    return session.get(CSRF_KEY)


def cookie_authenticated() -> bool:
    """A request that would be authenticated by the session cookie, not by a header."""
    return "Authorization" not in request.headers and USER_KEY in session


def check_csrf() -> None:
    """Refuse a state-changing request that rides on the cookie without the session's token.

    A page on another site can make the browser send the cookie but can neither read the
    token nor set a custom header without a CORS preflight this app never approves.
    Requests with an Authorization header are authenticated by that header alone (the
    session is ignored), so they are not CSRF-prone.
    """
    if request.method in SAFE_METHODS or request.endpoint in CSRF_EXEMPT:
        return
    if FORM_PROTECTED in request.blueprints:
        return
    if not cookie_authenticated():
        return
    expected = session.get(CSRF_KEY, "")
    sent = request.headers.get(CSRF_HEADER, "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Problem(
            403,
            "csrf-token-missing",
            f"requests signed in by cookie must send the {CSRF_HEADER} header "
            "from GET /auth/session",
        )
