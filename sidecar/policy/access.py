"""The access policy: one deny-by-default function of (user, action, resource)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sidecar.runtime import current_runtime
from sidecar.settings import Settings

DETAILS_READ = "details.read"
"""Reading a flag's confidential details: not a role permission but a rule over a FlagResource."""

DETAILS_PERMISSION = "details.request"

RELATIONSHIPS = frozenset(
    {
        "proposer",
        "responsible_manager",
        "panel_member",
        "handling_senior_manager",
        "deciding_director",
        "withheld_permission",
        "notice_issuer",
        "assigned_reviewer",
        "reviewer",
        "decision_maker",
        "reporter",
        "triage_manager",
    }
)
"""The ways a user can take part in a case; each is a business need for its details.

An incident's case is its own (who reported it, who triaged it) and that of every flag it
is linked to. A `reviewer` is one who reviewed under a review assignment; `assigned_reviewer`
one named by the open assignment. Someone who reviewed without one (before reviews were
assigned) is `unassigned_reviewer`, which is not here: taking part by one's own action opens
nothing.
"""


class Principal(Protocol):
    id: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class Decision:
    """Allowed or not, and on what basis (for the audit entry and the 403 message)."""

    allowed: bool
    basis: str


@dataclass(frozen=True)
class GrantScope:
    """What the policy needs to know of an access grant: whose, for which subject, until when."""

    grant_id: str
    user_id: str
    subject_kind: str
    subject_ref: str
    expires_at: datetime


@dataclass(frozen=True)
class FlagResource:
    """A flag whose details are asked for, with who is involved in it and the caller's grants.

    `relations` maps a user id to the relationships that user has with this flag (names from
    RELATIONSHIPS). `grants` are the caller's access grants the caller of `decide` found for
    the flag's subject; the policy checks each one's owner, subject and expiry itself, so a
    grant passed by mistake cannot open the wrong details. `shown_on` are the other subjects
    whose banner shows the flag (the properties a customer is linked to): a grant for a visit
    to the address opens the flags its banner warns of.
    """

    flag_id: str
    subject_kind: str
    subject_ref: str
    relations: Mapping[str, frozenset[str]] = field(default_factory=dict)
    grants: tuple[GrantScope, ...] = ()
    shown_on: frozenset[tuple[str, str]] = frozenset()

    def opened_by(self, grant: GrantScope) -> bool:
        """Whether the grant is for a subject whose banner shows this flag."""
        subject = (grant.subject_kind, grant.subject_ref)
        return subject == (self.subject_kind, self.subject_ref) or subject in self.shown_on


@dataclass(frozen=True)
class IncidentResource:
    """An incident whose narrative and triage considerations are asked for.

    Decided as a flag's details are: `relations` holds who reported or triaged it and who
    takes part in the case of a flag it is linked to; `grants` the caller's grants found for
    its subject.
    """

    incident_id: str
    subject_kind: str
    subject_ref: str
    relations: Mapping[str, frozenset[str]] = field(default_factory=dict)
    grants: tuple[GrantScope, ...] = ()

    def opened_by(self, grant: GrantScope) -> bool:
        """Whether the grant is for the incident's subject."""
        return (grant.subject_kind, grant.subject_ref) == (self.subject_kind, self.subject_ref)


def role_permissions(settings: Settings, roles: tuple[str, ...]) -> frozenset[str]:
    granted: set[str] = set()
    for role in roles:
        granted |= settings.access.roles.get(role, frozenset())
    return frozenset(granted)


def _role_granting(settings: Settings, user: Principal, permission: str) -> str | None:
    held = [r for r in user.roles if permission in settings.access.roles.get(r, ())]
    return held[0] if held else None


def _details(settings: Settings, user: Principal, resource: Any, now: datetime) -> Decision:
    role = _role_granting(settings, user, DETAILS_PERMISSION)
    if role is None:
        return Decision(False, f"no role held grants {DETAILS_PERMISSION}")
    if not isinstance(resource, FlagResource | IncidentResource):
        return Decision(False, "details are decided per flag and none was given")
    involved = sorted(resource.relations.get(user.id, frozenset()) & RELATIONSHIPS)
    if involved:
        return Decision(True, f"role {role} and relationship {involved[0]}")
    for grant in resource.grants:
        if grant.user_id == user.id and resource.opened_by(grant) and grant.expires_at > now:
            return Decision(True, f"role {role} and grant {grant.grant_id}")
    what = "flag" if isinstance(resource, FlagResource) else "incident"
    return Decision(
        False, f"no live access grant for this subject and no relationship to the {what}"
    )


def decide_with(
    settings: Settings,
    user: Principal,
    action: str,
    resource: Any = None,
    *,
    now: datetime | None = None,
) -> Decision:
    """Pure policy: the answer depends on the arguments only, so it can be read and tested alone.

    A role grants an action. Details (DETAILS_READ) need more: a role holding
    details.request AND a business need: a live grant of this user for this flag's subject,
    or a relationship to the flag. No role alone opens details, so administrators and
    auditors never read them by virtue of their role. Anything not granted is denied,
    including unknown actions and users without roles.
    """
    if action == DETAILS_READ:
        return _details(settings, user, resource, now or datetime.now(UTC))
    role = _role_granting(settings, user, action) if action else None
    if role is not None:
        return Decision(True, f"role {role}")
    return Decision(False, f"no role held grants {action or 'this action'}")


def decide(user: Principal, action: str, resource: Any = None) -> Decision:
    """The policy with the running app's settings and the current time."""
    return decide_with(current_runtime().settings, user, action, resource)
