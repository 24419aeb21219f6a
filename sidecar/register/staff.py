"""The staff directory: names and roles of people as last seen, for letters and banners."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from sidecar.register.case_models import StaffMember
from sidecar.storage.database import utcnow


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
    return shown_name(user_id, member.name if member is not None else None)


def shown_name(user_id: str | None, directory_name: str | None) -> str | None:
    """`name_of` when the directory's name (None if not listed) was read with other rows."""
    if not user_id:
        return None
    return directory_name or user_id


def holds(session: Session, user_id: str, role: str) -> bool | None:
    """Whether the person was last seen holding `role`; None if never seen."""
    member = session.get(StaffMember, user_id)
    if member is None:
        return None
    return role in member.roles


@dataclass(frozen=True)
class Person:
    """An actor outside a web request: the command line, or demo staff acting through services."""

    id: str
    name: str
    roles: tuple[str, ...]
    via: str = "cli"
