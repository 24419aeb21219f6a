"""The one argument every register service takes: where, with what, by whom and when."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.orm import Session

from sidecar.register.staff import Actor
from sidecar.settings import Settings
from sidecar.storage.crypto import KeyRing
from sidecar.storage.database import utcnow

Clock = Callable[[], datetime]
"""The current moment, timezone-aware UTC."""


@dataclass(frozen=True)
class ServiceContext:
    """What a register service needs besides its own inputs.

    A service reads the clock once, so every row one call writes carries the same moment;
    tests and back-dated records pass a stopped clock with `at`.
    """

    session: Session
    settings: Settings
    keyring: KeyRing
    actor: Actor
    clock: Clock = utcnow

    def now(self) -> datetime:
        return self.clock()

    def acting_as(self, actor: Actor) -> ServiceContext:
        """The same context for another person (demo data, and tests of a panel of three)."""
        return replace(self, actor=actor)

    def at(self, moment: datetime) -> ServiceContext:
        """The same context with its clock stopped at `moment`."""
        return replace(self, clock=lambda: moment)
