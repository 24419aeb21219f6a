"""The demo instance's people: one for every role the council's settings use, so a newcomer
can walk the whole policy alone, whoever that council's panel and deciders are."""

from __future__ import annotations

from dataclasses import dataclass

from sidecar.register.staff import Person
from sidecar.settings import Settings


@dataclass(frozen=True)
class Persona:
    user_id: str
    name: str
    role: str
    does: str

    @property
    def person(self) -> Person:
        """The persona acting through the register's services (the demo data)."""
        return Person(self.user_id, self.name, (self.role,), "demo")


# The ids and names of Forewarn's own roles' people, the same the widget's demo personas and
# the demo CRM page name.
KNOWN_PEOPLE = {
    "agent": ("demo.agent", "Ash Contact Agent"),
    "visiting_officer": ("demo.visitor", "Dee Visiting Officer"),
    "case_officer": ("demo.officer", "Alex Kerr"),
    "customer_support_manager": ("demo.csm", "Chris Moss"),
    "senior_manager": ("demo.sm", "Sam Patel"),
    "hs_manager": ("demo.hs", "Helen Shaw"),
    "service_director": ("demo.director", "Dana Director"),
    "legal": ("demo.legal", "Lee Legal"),
    "auditor": ("demo.auditor", "Pat Privacy"),
    "privacy_officer": ("demo.privacy", "Priya Officer"),
    "admin": ("demo.admin", "Ira IT"),
}

# What a holder of each permission does, as the sign-in page says it, in this order.
DOING = (
    ("incident.create", "records incidents"),
    ("details.request", "reads details with a business need"),
    ("flag.propose", "proposes flags"),
    ("incident.triage", "triages incidents"),
    ("appeal.assign", "assigns appeals"),
    ("notice.record_guidance", "records legal guidance to withhold a letter"),
    ("audit.read", "reads and verifies the access log"),
    ("sar.export", "answers subject access requests with the person's data"),
    ("sync.manage", "watches sync health"),
)


def _does(settings: Settings, role: str) -> str:
    """What the role does in this council's policy: its seats, then its permissions."""
    held = settings.access.roles.get(role, frozenset())
    parts = [
        doing
        for taken, doing in (
            (role in settings.panel.roles, "sits on the panel"),
            (role == settings.lifecycle.letter_signatory_role, "signs letters"),
            (role == settings.appeals.handler_role, "handles appeals"),
            (role in settings.appeals.decider_roles, "decides appeals"),
            (role == settings.lifecycle.withhold_permission_role, "permits withheld letters"),
        )
        if taken
    ]
    parts += [doing for permission, doing in DOING if permission in held]
    return ", ".join(parts) or "reads banners"


def _always_involved(settings: Settings) -> set[str]:
    """Roles whose holder takes part in every case: a seat on the panel, signing its letter,
    handling its appeal."""
    return {
        *settings.panel.roles,
        settings.lifecycle.letter_signatory_role,
        settings.appeals.handler_role,
    }


def personas(settings: Settings) -> tuple[Persona, ...]:
    """One persona for each role the settings give permissions to (Forewarn's roles first,
    then the council's own), and a second of each role that must decide appeals uninvolved
    while its first holder takes part in every case, so an appeal can still be decided."""
    found = []
    for role in settings.access.known_roles:
        if role not in settings.access.roles:
            continue
        name = settings.access.role_name(role)
        user_id, person = KNOWN_PEOPLE.get(role, (f"demo.{role}", f"Demo {name}"))
        found.append(Persona(user_id, person, role, _does(settings, role)))
    involved = _always_involved(settings)
    for role in settings.appeals.uninvolved_roles:
        if role in involved and role in settings.access.roles:
            name = settings.access.role_name(role)
            found.append(
                Persona(
                    f"demo.{role}.uninvolved",
                    f"Second {name}",
                    role,
                    "decides appeals in the cases the first took part in",
                )
            )
    return tuple(found)


def holding(settings: Settings, permission: str, role: str = "") -> Persona:
    """The persona of `role` if it holds `permission`, else the first persona that does."""
    people = personas(settings)
    held = [p for p in people if permission in settings.access.roles.get(p.role, ())]
    preferred = [p for p in held if p.role == role]
    if not (preferred or held):
        raise LookupError(f"no role in access.roles holds {permission!r}")
    return (preferred or held)[0]


def of_role(settings: Settings, role: str) -> Persona:
    """The (first) persona of a role."""
    return next(p for p in personas(settings) if p.role == role)
