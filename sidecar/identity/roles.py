"""From what an identity provider or CRM says about a user to Forewarn roles, through config."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sidecar.settings import Settings


class ClaimError(ValueError):
    """A roles/groups claim is not a string or a list of strings."""


def claim_values(value: Any) -> list[str]:
    """A claim that may hold one name or a list of names, as a list."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ClaimError("roles and groups must be a string or a list of strings")


def map_roles(settings: Settings, names: Iterable[str]) -> tuple[str, ...]:
    """Forewarn roles for these group/role names; names neither mapped nor known grant nothing."""
    identity = settings.identity
    roles: set[str] = set()
    for name in names:
        if name in identity.role_map:
            roles.update(identity.role_map[name])
        elif identity.role_names_pass_through and name in settings.access.known_roles:
            roles.add(name)
    return tuple(sorted(roles))
