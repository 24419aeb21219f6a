"""The staff directory: names and roles of people as last seen, for letters and banners."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from sqlalchemy.orm import Session

from sidecar.db import utcnow
from sidecar.lifecycle_models import StaffMember


class Actor(Protocol):
    """Whoever acts: a signed-in StaffUser, or the command line."""

    id: str
    name: str
    roles: tuple[str, ...]


def remember(session: Session, user_id: str, name: str, roles: Collection[str]) -> None:
    """Record a person's name and current roles (from their sign-in)."""
    member = session.get(StaffMember, user_id)
    if member is None:
        member = StaffMember(id=user_id)
        session.add(member)
    if name:
        member.name = name
    member.roles = sorted(roles)
    member.last_seen_at = utcnow()


def name_of(session: Session, user_id: str | None) -> str | None:
    """The person's name if known, else their id; None for no one."""
    if not user_id:
        return None
    member = session.get(StaffMember, user_id)
    return member.name if member is not None and member.name else user_id


def holds(session: Session, user_id: str, role: str) -> bool | None:
    """Whether the person was last seen holding `role`; None if never seen."""
    member = session.get(StaffMember, user_id)
    if member is None:
        return None
    return role in member.roles
