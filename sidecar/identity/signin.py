"""The sign-in every way in shares: who a member of staff is, and starting their session."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from flask_login import login_user

from sidecar.audit import writer as audit
from sidecar.errors import Problem
from sidecar.identity import sessions, staff_sessions
from sidecar.identity.access_tokens import ACCESS_TOKEN_SECONDS, issue_access_token
from sidecar.identity.user import StaffUser
from sidecar.lookup import alerts
from sidecar.runtime import current_runtime
from sidecar.storage.database import utcnow

UNVERIFIED = " (account as named by the refused sign-in, not verified)"
REASON_WIDTH = 256  # audit_entries.outcome_reason


class SignInRefused(Problem):
    """A refused sign-in, already in the audit trail."""


def refuse(
    problem: Problem, via: str, account: str | None = None, *, verified: bool = False
) -> SignInRefused:
    """Record `problem` as a refused sign-in (see `record_refusal`); return it to raise."""
    record_refusal(problem.detail, via, account, verified=verified)
    return SignInRefused(problem.status, problem.slug, problem.detail, **problem.extra)


def record_refusal(
    reason: str, via: str, account: str | None = None, *, verified: bool = False
) -> None:
    """Record a refused sign-in with its reason, and raise an alert on a pattern.

    `account` is whom the attempt named (from a token that failed its checks, unless
    `verified`); refusals naming one account count towards a privacy alert. The entry and
    any alert are committed before the refusal is answered; if they cannot be, the answer
    is 503 and still no sign-in.
    """
    if account and not verified:
        reason = reason[: REASON_WIDTH - len(UNVERIFIED)] + UNVERIFIED
    runtime = current_runtime()
    with runtime.database.transaction() as session:
        audit.append(
            session,
            audit.AuditEvent(
                action="sign_in",
                outcome="denied",
                outcome_reason=reason[:REASON_WIDTH],
                actor_id=account[:128] if account else None,
                actor_roles="" if account else None,
                via=via,
            ),
        )
        if account:
            alerts.after_refused_sign_in(session, runtime.settings, account[:128], utcnow())


@dataclass
class Attempt:
    """Whom a sign-in attempt names, as far as it got: `verified` once its proof is checked."""

    account: str | None = None
    verified: bool = False


@contextmanager
def refusals_recorded(via: str, attempt: Attempt | None = None) -> Iterator[Attempt]:
    """Record every 4xx refusal raised inside as a refused sign-in by `via`.

    The block fills in the `Attempt` it is given as it learns whom the attempt names. Errors
    of our own or of the provider's (5xx) are not refusals of the person and pass as they are.
    """
    attempt = attempt or Attempt()
    try:
        yield attempt
    except SignInRefused:
        raise
    except Problem as problem:
        if not 400 <= problem.status < 500:
            raise
        raise refuse(problem, via, attempt.account, verified=attempt.verified) from None


def sign_in(user: StaffUser, *, id_token: str | None = None) -> dict[str, Any]:
    """Start a session for a verified user, audit it, and return the sign-in response body.

    Shared by every way in (launch token, OIDC, Canvas, demo). A user whose claims map to
    no Forewarn role is refused: signed in, they could do nothing but be confused. The
    session is recorded server-side (with the provider's `id_token`, for logging out there).
    """
    if not user.roles:
        detail = "your sign-in maps to no Forewarn role; ask IT to map one"
        no_role = Problem(403, "no-role", detail)
        raise refuse(no_role, user.via, user.id, verified=True)
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
