"""The demo instance's people, one for every role, so a newcomer can walk the whole policy."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Persona:
    user_id: str
    name: str
    role: str
    does: str


# The ids of the demo data's own staff (sidecar/register/demo.py) and of the widget's demo
# personas, so the console shows the same people the demo register and CRM page name.
PERSONAS = (
    Persona("demo.agent", "Ash Contact Agent", "agent", "reads banners, records incidents"),
    Persona(
        "demo.visitor",
        "Dee Visiting Officer",
        "visiting_officer",
        "reads details before a visit, records incidents",
    ),
    Persona("demo.officer", "Alex Kerr", "case_officer", "records incidents, proposes flags"),
    Persona(
        "demo.csm",
        "Chris Moss",
        "customer_support_manager",
        "triages incidents, sits on the panel, signs letters, assigns appeals",
    ),
    Persona("demo.sm", "Sam Patel", "senior_manager", "triages incidents, sits on the panel"),
    Persona("demo.hs", "Helen Shaw", "hs_manager", "sits on the panel for health and safety"),
    Persona(
        "demo.director",
        "Dana Director",
        "service_director",
        "decides appeals, permits withheld notices",
    ),
    Persona(
        "demo.legal",
        "Lee Legal",
        "legal",
        "records legal guidance to withhold a letter, reads flag records and reports",
    ),
    Persona("demo.auditor", "Pat Privacy", "auditor", "reads and verifies the access log"),
    Persona(
        "demo.privacy",
        "Priya Officer",
        "privacy_officer",
        "answers subject access requests with the person's data",
    ),
    Persona("demo.admin", "Ira IT", "admin", "watches sync health"),
)

BY_ID = {persona.user_id: persona for persona in PERSONAS}
