"""A signed-in member of staff, as every way in and every request sees them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask_login import UserMixin


@dataclass(frozen=True)
class StaffUser(UserMixin):
    """A signed-in member of staff; roles come from the identity provider or CRM host."""

    id: str
    name: str
    roles: tuple[str, ...]
    via: str = "api"
    # The server-side session this sign-in belongs to (`staff_sessions`): ending it ends this.
    session_id: str = field(default="", repr=False, compare=False)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "roles": list(self.roles)}
