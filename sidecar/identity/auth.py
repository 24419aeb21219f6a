"""Who is calling: staff from CRM launch tokens, held by Flask-Login or a bearer token."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from cachetools import TTLCache
from flask import Blueprint, Flask, current_app, jsonify, request, session
from flask_login import LoginManager, UserMixin, login_user, logout_user
from pydantic import Field

from sidecar.api.endpoint import Input, endpoint
from sidecar.errors import Problem
from sidecar.identity import sessions
from sidecar.identity.launch_keys import KeySourceError
from sidecar.identity.models import claim_launch_token
from sidecar.identity.roles import ClaimError, claim_values, map_roles
from sidecar.runtime import current_runtime
from sidecar.settings import ROLES

ACCESS_TOKEN_SECONDS = 900
VERIFIED_TOKENS_KEPT = 10_000
LAUNCH_MAX_SECONDS = 300
LAUNCH_LEEWAY_SECONDS = 30
# Asymmetric only: the CRM host holds the private key, Forewarn only the public one.
# "none" and HS* are refused before any key is looked up.
LAUNCH_ALGORITHMS = ("EdDSA", "ES256", "RS256")
DEMO_KID = "demo-launch"

bp = Blueprint("auth", __name__, url_prefix="/auth")


@dataclass(frozen=True)
class StaffUser(UserMixin):
    """A signed-in member of staff; roles come from the identity provider or CRM host."""

    id: str
    name: str
    roles: tuple[str, ...]
    via: str = "api"

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "roles": list(self.roles)}


def _session_secret() -> str:
    return current_runtime().session_secret


def issue_access_token(user: StaffUser) -> str:
    now = int(time.time())
    claims = {
        "typ": "forewarn-access",
        "sub": user.id,
        "name": user.name,
        "roles": list(user.roles),
        "via": user.via,
        "iat": now,
        "exp": now + ACCESS_TOKEN_SECONDS,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, _session_secret(), algorithm="HS256")


def _verify_access_token(token: str) -> tuple[StaffUser, int] | None:
    """The user an access token signs in and when it expires, or None if it is not valid."""
    try:
        claims = jwt.decode(
            token,
            _session_secret(),
            algorithms=["HS256"],
            options={"require": ["exp", "iat", "sub", "typ"]},
        )
    except jwt.PyJWTError:
        return None
    if claims.get("typ") != "forewarn-access":
        return None
    user = StaffUser(
        claims["sub"],
        claims.get("name", ""),
        tuple(claims.get("roles", ())),
        claims.get("via", "api"),
    )
    return user, int(claims["exp"])


def _refuse(detail: str) -> Problem:
    return Problem(401, "invalid-token", detail)


def verify_launch_token(token: str) -> StaffUser:
    """Check a CRM host's launch JWT and return who it signs in.

    Refused: anything not a JWT; algorithms other than EdDSA/ES256/RS256; a key id the
    configured JWKS lacks (and the demo key outside demo mode); a bad signature; another
    audience; expiry, or a lifetime over 5 minutes; a missing or already used `jti`.
    Messages never repeat the token.
    """
    runtime = current_runtime()
    settings = runtime.settings
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise _refuse("the launch token is not a JWT") from None
    alg = header.get("alg")
    if alg not in LAUNCH_ALGORITHMS:
        raise _refuse(f"launch token algorithm {str(alg)[:16]!r} refused")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _refuse("the launch token names no key id (kid)")
    if kid == DEMO_KID and not settings.demo:
        raise _refuse("the demo launch key is accepted on demo instances only")
    try:
        key = runtime.launch_keys.find(kid)
    except KeySourceError as exc:
        current_app.logger.error("launch keys unavailable: %s", exc)
        raise Problem(503, "keys-unavailable", "launch token keys cannot be read") from None
    if key is None:
        raise _refuse("the launch token is signed by an unknown key")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=settings.deployment.public_url,
            options={"require": ["exp", "iat", "sub", "aud", "jti"]},
            leeway=LAUNCH_LEEWAY_SECONDS,
        )
    except jwt.PyJWTError as exc:
        raise _refuse(f"launch token refused: {exc}") from None
    if not isinstance(claims["iat"], int | float) or claims["exp"] - claims["iat"] > (
        LAUNCH_MAX_SECONDS
    ):
        raise _refuse("launch tokens may live 5 minutes at most")
    if not isinstance(claims["jti"], str) or not 8 <= len(claims["jti"]) <= 256:
        raise _refuse("the launch token's jti must be a string of 8 to 256 characters")
    try:
        names = claim_values(claims.get("roles")) + claim_values(claims.get("groups"))
    except ClaimError as exc:
        raise _refuse(str(exc)) from None
    # Kept until the token could no longer pass `exp` (with leeway), then pruned.
    until = datetime.fromtimestamp(claims["exp"] + LAUNCH_LEEWAY_SECONDS, UTC)
    if not claim_launch_token(runtime.database, claims["jti"], until):
        raise _refuse("this launch token has already been used")
    return StaffUser(
        str(claims["sub"]),
        str(claims.get("name", "")),
        map_roles(settings, names),
        "widget",
    )


def mint_launch_token(
    private_pem: bytes, audience: str, user_id: str, name: str, roles: list[str], ttl: int = 300
) -> str:
    """What a CRM host does: sign a short-lived launch token for the signed-in user."""
    now = int(time.time())
    claims = {
        "sub": user_id,
        "name": name,
        "roles": roles,
        "aud": audience,
        "iat": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, private_pem, algorithm="EdDSA", headers={"kid": DEMO_KID})


def sign_in(user: StaffUser) -> dict[str, Any]:
    """Start a session for a verified user, audit it, and return the sign-in response body.

    Shared by every way in (launch token, OIDC, Canvas, demo). A user whose claims map to
    no Forewarn role is refused: signed in, they could do nothing but be confused.
    """
    from sidecar.audit import writer as audit

    if not user.roles:
        audit.record(
            audit.AuditEvent(
                action="sign_in",
                outcome="denied",
                outcome_reason="no Forewarn role",
                actor_id=user.id,
                actor_name=user.name,
                actor_roles="",
                via=user.via,
            )
        )
        raise Problem(403, "no-role", "your sign-in maps to no Forewarn role; ask IT to map one")
    audit.record(
        audit.AuditEvent(
            action="sign_in",
            actor_id=user.id,
            actor_name=user.name,
            actor_roles=",".join(user.roles),
            via=user.via,
        )
    )
    csrf = sessions.start(user.as_json() | {"via": user.via})
    login_user(user)
    return {
        "access_token": issue_access_token(user),
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_SECONDS,
        "csrf_token": csrf,
        "user": user.as_json(),
    }


def _no_store(response: Any) -> Any:
    response.headers["Cache-Control"] = "no-store"
    return response


class LaunchBody(Input):
    token: str


@endpoint(
    bp,
    "/launch",
    methods=["POST"],
    public=True,
    action=None,
    body=LaunchBody,
    summary="Exchange a CRM launch token for an access token and a session",
    tags=["identity"],
)
def launch(body: LaunchBody) -> Any:
    from sidecar.audit import writer as audit

    try:
        user = verify_launch_token(body.token)
    except Problem as refused:
        if refused.status == 401:
            # A refused token is a failed sign-in: recorded, without the token itself.
            audit.record(
                audit.AuditEvent(
                    action="sign_in",
                    outcome="denied",
                    outcome_reason=refused.detail[:256],
                    via="widget",
                )
            )
        raise
    return _no_store(jsonify(sign_in(user)))


class DemoSignInBody(Input):
    user: str = Field(min_length=1, max_length=128)
    name: str = Field("", max_length=256)
    roles: list[str] = Field(min_length=1)


@endpoint(
    bp,
    "/demo",
    methods=["POST"],
    public=True,
    action=None,
    body=DemoSignInBody,
    summary="Sign in as any demo user with chosen roles (demo instances only; 404 elsewhere)",
    tags=["identity"],
)
def demo_sign_in(body: DemoSignInBody) -> Any:
    settings = current_runtime().settings
    if not settings.demo or settings.deployment.production:
        raise Problem(404, "not-found", "demo sign-in exists on demo instances only")
    unknown = [r for r in body.roles if r not in ROLES]
    if unknown:
        raise Problem(422, "invalid-request", f"body field 'roles': unknown role {unknown[0]!r}")
    user = StaffUser(body.user, body.name or body.user, tuple(sorted(set(body.roles))), "demo")
    return _no_store(jsonify(sign_in(user)))


@endpoint(
    bp,
    "/session",
    public=True,
    action=None,
    summary="Who the session cookie signs in, and the CSRF token its state-changing calls need",
    tags=["identity"],
)
def whoami() -> Any:
    from flask_login import current_user

    if not current_user.is_authenticated:
        raise Problem(401, "unauthenticated", "sign in first (session or bearer token)")
    return _no_store(
        jsonify(user=current_user.as_json(), via=current_user.via, csrf_token=sessions.csrf_token())
    )


@endpoint(
    bp,
    "/logout",
    methods=["POST"],
    public=True,
    action=None,
    summary="End the session",
    tags=["identity"],
)
def logout() -> Any:
    logout_user()
    session.clear()
    return "", 204


def init_auth(app: Flask) -> None:
    """Session cookies, Flask-Login loaders, CSRF checks and every sign-in route."""
    from sidecar.identity import canvas, oidc

    settings = app.extensions["forewarn"].settings
    sessions.configure_cookies(app, settings)
    manager = LoginManager()
    manager.init_app(app)

    @manager.user_loader
    def _from_session(user_id: str) -> StaffUser | None:
        # A request with an Authorization header is judged by that header alone.
        if "Authorization" in request.headers:
            return None
        data = sessions.current(settings)
        if not data or data.get("id") != user_id:
            return None
        return StaffUser(data["id"], data["name"], tuple(data["roles"]), data.get("via", "api"))

    # Tokens already verified, with their expiry: a widget calls with the same token for
    # its whole life, and checking the signature again each time is most of a banner's
    # sign-in cost. Only valid tokens are kept, each until it expires.
    verified: TTLCache[str, tuple[StaffUser, int]] = TTLCache(
        maxsize=VERIFIED_TOKENS_KEPT, ttl=ACCESS_TOKEN_SECONDS
    )
    verified_lock = threading.Lock()

    @manager.request_loader
    def _from_bearer(req: Any) -> StaffUser | None:
        header = req.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        with verified_lock:
            known = verified.get(token)
        if known is None:
            known = _verify_access_token(token)
            if known is None:
                return None
            with verified_lock:
                verified[token] = known
        user, expires = known
        return user if time.time() < expires else None

    @manager.unauthorized_handler
    def _unauthorized() -> Any:
        raise Problem(401, "unauthenticated", "sign in first (session or bearer token)")

    app.before_request(sessions.check_csrf)
    app.register_blueprint(bp)
    oidc.init_oidc(app, settings)
    canvas.init_canvas(app, settings)
