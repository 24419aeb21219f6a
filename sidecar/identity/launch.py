"""CRM launch tokens: the short-lived signed JWT a CRM host mints for the member of staff."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import jwt
from flask import Blueprint, Flask, current_app, jsonify

from sidecar.api.endpoint import Input, endpoint
from sidecar.errors import Problem
from sidecar.identity.launch_keys import KeySourceError
from sidecar.identity.models import claim_launch_token
from sidecar.identity.roles import ClaimError, claim_values, map_roles
from sidecar.identity.signin import Attempt, no_store, refusals_recorded, sign_in
from sidecar.identity.user import StaffUser
from sidecar.runtime import StartupError, current_runtime
from sidecar.settings import Settings

LAUNCH_MAX_SECONDS = 300
LAUNCH_LEEWAY_SECONDS = 30
# Asymmetric only: the CRM host holds the private key, Forewarn only the public one.
# "none" and HS* are refused before any key is looked up.
LAUNCH_ALGORITHMS = ("EdDSA", "ES256", "RS256")
DEMO_KID = "demo-launch"

bp = Blueprint("launch", __name__, url_prefix="/auth")


def _refuse(detail: str) -> Problem:
    return Problem(401, "invalid-token", detail)


def verify_launch_token(token: str) -> StaffUser:
    """Check a CRM host's launch JWT and return who it signs in.

    Refused: anything not a JWT; algorithms other than EdDSA/ES256/RS256; a key id the
    configured JWKS lacks (and the demo key outside demo mode); a bad signature; another
    audience; another issuer than `identity.launch_issuer` when it is set; expiry, or a
    lifetime over 5 minutes; a missing or already used `jti`.
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
    issuer = settings.identity.launch_issuer
    required = ["exp", "iat", "sub", "aud", "jti"] + (["iss"] if issuer else [])
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=settings.deployment.public_url,
            issuer=issuer or None,
            options={"require": required},
            leeway=LAUNCH_LEEWAY_SECONDS,
        )
    except jwt.PyJWTError as exc:
        raise _refuse(f"launch token refused: {exc}") from None
    for claim in ("exp", "iat"):
        if isinstance(claims[claim], bool) or not isinstance(claims[claim], int | float):
            raise _refuse(f"the launch token's {claim} must be a number of seconds")
    if claims["exp"] - claims["iat"] > LAUNCH_MAX_SECONDS:
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
    private_pem: bytes,
    audience: str,
    user_id: str,
    name: str,
    roles: list[str],
    ttl: int = 300,
    issuer: str = "",
) -> str:
    """What a CRM host does: sign a short-lived launch token for the signed-in user."""
    now = int(time.time())
    claims: dict[str, Any] = {"iss": issuer} if issuer else {}
    claims |= {
        "sub": user_id,
        "name": name,
        "roles": roles,
        "aud": audience,
        "iat": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, private_pem, algorithm="EdDSA", headers={"kid": DEMO_KID})


def init_launch(app: Flask, settings: Settings) -> None:
    """Register the route; in production, refuse to start without the CRM host's issuer."""
    app.register_blueprint(bp)
    if settings.deployment.production and not settings.identity.launch_issuer:
        raise StartupError(
            "setting 'identity.launch_issuer': must name the CRM host's issuer (the iss its "
            "launch tokens carry) when deployment.production is true"
        )


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
    # A refused token is a failed sign-in: recorded with whom it named, never the token itself.
    with refusals_recorded("widget", Attempt(claimed_subject(body.token))):
        user = verify_launch_token(body.token)
    return no_store(jsonify(sign_in(user)))


def claimed_subject(token: str) -> str | None:
    """The `sub` a token names, read without checking it: only to say whom a refusal named."""
    try:
        sub = jwt.decode(token, options={"verify_signature": False}).get("sub")
    except jwt.PyJWTError:
        return None
    return sub if isinstance(sub, str) and sub else None
