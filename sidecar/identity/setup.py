"""Wires sign-in into the app: cookies, Flask-Login's loaders, CSRF, and every way in."""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from flask_login import LoginManager

from sidecar.errors import Problem
from sidecar.identity import canvas, launch, oidc, routes, sessions, staff_sessions
from sidecar.identity.access_tokens import VerifiedTokens
from sidecar.identity.user import StaffUser


def init_auth(app: Flask) -> None:
    """Session cookies, Flask-Login loaders, CSRF checks and every sign-in route."""
    runtime = app.extensions["forewarn"]
    settings = runtime.settings
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
        session_id = sessions.session_id()
        if not staff_sessions.is_live(runtime.database, session_id):
            # Ended by a logout (here or on another instance) or by an administrator.
            sessions.forget()
            return None
        return StaffUser(
            data["id"], data["name"], tuple(data["roles"]), data.get("via", "api"), session_id
        )

    verified = VerifiedTokens(runtime.session_secret)

    @manager.request_loader
    def _from_bearer(req: Any) -> StaffUser | None:
        header = req.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        user = verified.user(token)
        if user is None or not staff_sessions.is_live(runtime.database, user.session_id):
            return None
        return user

    @manager.unauthorized_handler
    def _unauthorized() -> Any:
        raise Problem(401, "unauthenticated", "sign in first (session or bearer token)")

    app.before_request(sessions.check_csrf)
    app.register_blueprint(routes.bp)
    launch.init_launch(app, settings)
    oidc.init_oidc(app, settings)
    canvas.init_canvas(app, settings)
