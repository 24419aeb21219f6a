"""The sign-in every way in shares: who a member of staff is, and starting their session."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask_login import login_user

from sidecar.audit import writer as audit
from sidecar.errors import Problem
from sidecar.identity import sessions, staff_sessions
from sidecar.identity.access_tokens import ACCESS_TOKEN_SECONDS, issue_access_token
from sidecar.identity.user import StaffUser
from sidecar.runtime import current_runtime


def sign_in(user: StaffUser, *, id_token: str | None = None) -> dict[str, Any]:
    """Start a session for a verified user, audit it, and return the sign-in response body.

    Shared by every way in (launch token, OIDC, Canvas, demo). A user whose claims map to
    no Forewarn role is refused: signed in, they could do nothing but be confused. The
    session is recorded server-side (with the provider's `id_token`, for logging out there).
    """
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
    runtime = current_runtime()
    session_id = staff_sessions.start(
        runtime.database,
        user.id,
        user.via,
        runtime.settings.identity.session_absolute_seconds,
        id_token=id_token,
    )
    user = replace(user, session_id=session_id)
    csrf = sessions.start(user.as_json() | {"via": user.via}, session_id)
    login_user(user)
    return {
        "access_token": issue_access_token(user),
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_SECONDS,
        "csrf_token": csrf,
        "user": user.as_json(),
    }


def no_store(response: Any) -> Any:
    """Mark a response carrying a credential or who is signed in as never to be cached."""
    response.headers["Cache-Control"] = "no-store"
    return response
