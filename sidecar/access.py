"""The access policy: one deny-by-default function of (user, action, resource)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from flask import current_app

from sidecar.settings import Settings


class Principal(Protocol):
    id: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class Decision:
    """Allowed or not, and on what basis (for the audit entry and the 403 message)."""

    allowed: bool
    basis: str


def role_permissions(settings: Settings, roles: tuple[str, ...]) -> frozenset[str]:
    granted: set[str] = set()
    for role in roles:
        granted |= settings.access.roles.get(role, frozenset())
    return frozenset(granted)


def decide_with(settings: Settings, user: Principal, action: str, resource: Any = None) -> Decision:
    """Pure policy: the answer depends on the arguments only, so it can be read and tested alone.

    A role grants an action; nothing else does at this level. Anything not granted is
    denied, including unknown actions and users without roles.
    """
    permissions = role_permissions(settings, tuple(user.roles))
    if action in permissions:
        held = [r for r in user.roles if action in settings.access.roles.get(r, ())]
        return Decision(True, f"role {held[0]}")
    return Decision(False, f"no role held grants {action or 'this action'}")


def decide(user: Principal, action: str, resource: Any = None) -> Decision:
    return decide_with(current_app.extensions["forewarn"].settings, user, action, resource)
