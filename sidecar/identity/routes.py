"""The session's own routes: who is signed in, signing out, and the demo sign-in."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask_login import current_user, logout_user
from pydantic import Field

from sidecar.api.endpoint import Input, endpoint
from sidecar.audit import writer as audit
from sidecar.errors import Problem
from sidecar.identity import oidc, sessions, staff_sessions
from sidecar.identity.signin import Attempt, no_store, refusals_recorded, sign_in
from sidecar.identity.user import StaffUser
from sidecar.runtime import current_runtime

bp = Blueprint("auth", __name__, url_prefix="/auth")


class DemoSignInBody(Input):
    user: str = Field(min_length=1, max_length=128)
    name: str = Field("", max_length=256)
    # The document states the instance's roles (sidecar/api/openapi.py), the council's own too.
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
    with refusals_recorded("demo", Attempt(body.user)):
        if not settings.demo or settings.deployment.production:
            raise Problem(404, "not-found", "demo sign-in exists on demo instances only")
        unknown = [r for r in body.roles if r not in settings.access.known_roles]
        if unknown:
            detail = f"body field 'roles': unknown role {unknown[0]!r}"
            raise Problem(422, "invalid-request", detail)
        user = StaffUser(body.user, body.name or body.user, tuple(sorted(set(body.roles))), "demo")
        return no_store(jsonify(sign_in(user)))


@endpoint(
    bp,
    "/session",
    public=True,
    action=None,
    summary="Who the session cookie signs in, and the CSRF token its state-changing calls need",
    tags=["identity"],
)
def whoami() -> Any:
    if not current_user.is_authenticated:
        raise Problem(401, "unauthenticated", "sign in first (session or bearer token)")
    return no_store(
        jsonify(user=current_user.as_json(), via=current_user.via, csrf_token=sessions.csrf_token())
    )


@endpoint(
    bp,
    "/logout",
    methods=["POST"],
    public=True,
    action=None,
    summary="End the session everywhere: its cookie and its access tokens stop working",
    tags=["identity"],
    responses={
        200: "Ended; `end_session_url` is where to send the browser to sign out at the provider",
        204: "Ended (or there was no session)",
    },
)
def logout() -> Any:
    url = sign_out()
    if url is None:
        return "", 204
    return no_store(jsonify(end_session_url=url))


def sign_out() -> str | None:
    """End this request's session everywhere it is presented; the provider's logout URL, if any.

    Shared by `POST /auth/logout` and the console's sign-out button.
    """
    runtime = current_runtime()
    session_id = current_user.session_id if current_user.is_authenticated else sessions.session_id()
    ended = staff_sessions.end(runtime.database, session_id) if session_id else None
    if ended is not None:
        audit.record(audit.AuditEvent(action="sign_out"))
    logout_user()
    sessions.forget()
    via, id_token = ended or ("", None)
    # Signed in at the provider, the browser is still signed in there: offer to end that too
    # (OpenID Connect RP-Initiated Logout 1.0).
    return oidc.end_session_url(id_token) if via == "oidc" and id_token else None
