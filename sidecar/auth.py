"""Who is calling: staff from CRM launch tokens, held by Flask-Login or a bearer token."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from flask import Blueprint, Flask, current_app, jsonify, session
from flask_login import LoginManager, UserMixin, login_user, logout_user
from jwt import PyJWKSet

from sidecar.errors import Problem
from sidecar.settings import ROLES
from sidecar.web import Input, endpoint

ACCESS_TOKEN_SECONDS = 900
LAUNCH_MAX_SECONDS = 300
LAUNCH_ALGORITHMS = ["EdDSA", "ES256", "RS256"]

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


def _known_roles(values: Any) -> tuple[str, ...]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise Problem(401, "invalid-token", "roles must be a list of strings")
    return tuple(sorted({v for v in values if v in ROLES}))


def _session_secret() -> str:
    return current_app.extensions["forewarn"].session_secret


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


def _user_from_access_token(token: str) -> StaffUser | None:
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
    return StaffUser(
        claims["sub"],
        claims.get("name", ""),
        tuple(claims.get("roles", ())),
        claims.get("via", "api"),
    )


def verify_launch_token(token: str) -> StaffUser:
    """Check a CRM host's launch JWT: known key, audience, freshness, lifetime, a jti."""
    state = current_app.extensions["forewarn"]
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Problem(401, "invalid-token", "the launch token is not a JWT") from None
    if header.get("alg") not in LAUNCH_ALGORITHMS:
        raise Problem(401, "invalid-token", f"launch token algorithm {header.get('alg')!r} refused")
    jwks: PyJWKSet = state.launch_keys
    key = next((k for k in jwks.keys if k.key_id == header.get("kid")), None)
    if key is None:
        raise Problem(401, "invalid-token", "the launch token is signed by an unknown key")
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[header["alg"]],
            audience=state.settings.deployment.public_url,
            options={"require": ["exp", "iat", "sub", "aud", "jti"]},
            leeway=30,
        )
    except jwt.PyJWTError as exc:
        raise Problem(401, "invalid-token", f"launch token refused: {exc}") from None
    if claims["exp"] - claims["iat"] > LAUNCH_MAX_SECONDS:
        raise Problem(401, "invalid-token", "launch tokens may live 5 minutes at most")
    return StaffUser(
        str(claims["sub"]),
        str(claims.get("name", "")),
        _known_roles(claims.get("roles", [])),
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
    return jwt.encode(claims, private_pem, algorithm="EdDSA", headers={"kid": "demo-launch"})


def load_launch_keys(text: str, source: str) -> PyJWKSet:
    try:
        return PyJWKSet.from_dict(json.loads(text))
    except (ValueError, jwt.PyJWTError) as exc:
        raise ValueError(f"{source}: not a usable JWKS ({exc})") from None


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
    user = verify_launch_token(body.token)
    from sidecar import audit

    # Recorded before the session exists: if the trail cannot be written, the 503 that
    # follows must not carry a usable session cookie either.
    audit.record(
        audit.AuditEvent(
            action="sign_in",
            actor_id=user.id,
            actor_name=user.name,
            actor_roles=",".join(user.roles),
            via=user.via,
        )
    )
    login_user(user)
    session["forewarn.user"] = user.as_json() | {"via": user.via}
    response = jsonify(
        access_token=issue_access_token(user),
        token_type="Bearer",
        expires_in=ACCESS_TOKEN_SECONDS,
        user=user.as_json(),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


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
    manager = LoginManager()
    manager.init_app(app)

    @manager.user_loader
    def _from_session(user_id: str) -> StaffUser | None:
        data = session.get("forewarn.user")
        if not data or data.get("id") != user_id:
            return None
        return StaffUser(data["id"], data["name"], tuple(data["roles"]), data.get("via", "api"))

    @manager.request_loader
    def _from_bearer(req: Any) -> StaffUser | None:
        header = req.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        return _user_from_access_token(token.strip())

    @manager.unauthorized_handler
    def _unauthorized() -> Any:
        raise Problem(401, "unauthenticated", "sign in first (session or bearer token)")

    app.register_blueprint(bp)
