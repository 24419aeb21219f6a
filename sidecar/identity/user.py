"""A signed-in member of staff, as every way in and every request sees them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_login import UserMixin


@dataclass(frozen=True)
class StaffUser(UserMixin):
    """A signed-in member of staff; roles come from the identity provider or CRM host."""

    id: str
    name: str
    roles: tuple[str, ...]
    via: str = "api"

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "roles": list(self.roles)}
