"""Sign-in sessions held server-side: started at sign-in, checked on every request, ended at will.

A session id is random and travels in the signed session cookie and in each access token minted
for it; the database keeps only its SHA-256. Every request looks the session up, so a logout or
an administrator ending someone's sessions takes effect at once on every instance.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.orm import Session

from sidecar.audit import writer as audit
from sidecar.identity.models import StaffSession
from sidecar.register.staff import Actor
from sidecar.storage.database import Database, utcnow

_TABLE = StaffSession.__table__


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class LiveSession:
    """A session still running, as an administrator sees it (never its id)."""

    user_id: str
    via: str
    started_at: datetime
    expires_at: datetime


def start(
    database: Database,
    user_id: str,
    via: str,
    lifetime_seconds: int,
    *,
    id_token: str | None = None,
    now: datetime | None = None,
) -> str:
    """Record a new session for `user_id` and return its id (for the cookie and tokens)."""
    now = now or utcnow()
    session_id = secrets.token_urlsafe(32)
    with database.transaction() as session:
        # Past their absolute expiry, rows decide nothing: their cookies are refused anyway.
        session.execute(delete(StaffSession).where(StaffSession.expires_at < now))
        session.add(
            StaffSession(
                id_hash=_digest(session_id),
                user_id=user_id,
                via=via,
                started_at=now,
                expires_at=now + timedelta(seconds=lifetime_seconds),
                id_token=id_token,
            )
        )
    return session_id


def is_live(database: Database, session_id: str, *, now: datetime | None = None) -> bool:
    """Whether the session exists, has not been ended and has not passed its expiry."""
    if not session_id:
        return False
    statement = select(_TABLE.c.expires_at).where(
        _TABLE.c.id_hash == _digest(session_id), _TABLE.c.ended_at.is_(None)
    )
    with database.reader.connect() as connection:
        expires_at = connection.execute(statement).scalar()
    return expires_at is not None and expires_at > (now or utcnow())


def end(database: Database, session_id: str, by: str = "logout") -> tuple[str, str | None] | None:
    """End one session; return its sign-in route and ID token, or None if it was not live."""
    now = utcnow()
    with database.transaction() as session:
        row = session.get(StaffSession, _digest(session_id), with_for_update=True)
        if row is None or row.ended_at is not None or row.expires_at <= now:
            return None
        ended = (row.via, row.id_token)
        row.ended_at, row.ended_by, row.id_token = now, by[:128], None
    return ended


def _running(user_id: str, now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        StaffSession.user_id == user_id,
        StaffSession.ended_at.is_(None),
        StaffSession.expires_at > now,
    )


def live_sessions(session: Session, user_id: str) -> list[LiveSession]:
    """The user's sessions still running, oldest first."""
    rows = session.scalars(
        select(StaffSession).where(*_running(user_id, utcnow())).order_by(StaffSession.started_at)
    )
    return [LiveSession(r.user_id, r.via, r.started_at, r.expires_at) for r in rows]


def end_all_for_user(session: Session, actor: Actor, user_id: str, reason: str = "") -> int:
    """End every running session of `user_id` (a leaver, a lost device); return how many.

    Their cookies and access tokens stop working at once on every instance. The audit entry
    is written in the same transaction, so the sessions end only if it is recorded.
    """
    now = utcnow()
    result = session.execute(
        update(StaffSession)
        .where(*_running(user_id, now))
        .values(ended_at=now, ended_by=actor.id[:128], id_token=None)
    )
    count = result.rowcount or 0
    detail = f"ended {count} sessions of {user_id}" + (f": {reason}" if reason else "")
    audit.append(
        session,
        audit.AuditEvent(
            action="sessions.end",
            outcome_reason=detail,
            actor_id=actor.id,
            actor_name=actor.name,
            actor_roles=",".join(actor.roles),
            via=getattr(actor, "via", None),
        ),
    )
    return count
