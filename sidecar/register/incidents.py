"""The staff warning register: incidents as reported, and each manager's triage."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sidecar.audit import writer as audit
from sidecar.register import subjects
from sidecar.register.context import ServiceContext
from sidecar.register.history import audit_actor
from sidecar.register.models import Incident, Subject
from sidecar.register.rules import (
    PEOPLE_KINDS,
    REFERENCED_OUTCOMES,
    TRIAGE_CONSIDERATIONS,
    TRIAGE_OUTCOMES,
    Conflict,
    Invalid,
    NotFound,
)
from sidecar.register.staff import remember
from sidecar.settings import Settings
from sidecar.storage.crypto import KeyRing

REFERENCE_NAMES = {
    "refer_to_police": "police crime reference",
    "legal_action": "legal case reference",
}


@dataclass(frozen=True)
class IncidentReport:
    kind: str
    ref: str
    occurred_at: datetime
    channel: str
    behaviour_types: tuple[str, ...]
    narrative: str
    warning_given: bool
    external_references: tuple[tuple[str, str], ...] = ()
    """(system code, reference there), systems from catalogue.external_references."""
    reporter_kind: str = "staff"
    reporter_name: str = ""
    """The councillor or contractor it happened to, when a member of staff records it."""


def _check_codes(settings: Settings, report: IncidentReport, now: datetime) -> None:
    problems = []
    if report.channel not in settings.catalogue.channels:
        problems.append(f"unknown channel {report.channel!r}")
    if not report.behaviour_types:
        problems.append("name at least one behaviour type")
    problems += [
        f"unknown behaviour type {code!r}"
        for code in report.behaviour_types
        if code not in settings.catalogue.behaviour_types
    ]
    if report.occurred_at.tzinfo is None:
        problems.append("occurred_at needs a time zone (e.g. 2025-03-01T10:30:00Z)")
    elif report.occurred_at > now:
        problems.append("occurred_at is in the future")
    if not report.narrative.strip():
        problems.append("narrative is empty")
    systems = settings.catalogue.external_references
    for system, reference in report.external_references:
        if system not in systems:
            known = ", ".join(systems) or "none are configured"
            problems.append(f"unknown external reference system {system!r} ({known})")
        elif not reference.strip():
            problems.append(f"the {systems[system]} reference is empty")
    problems += people_problems("reporter_kind", (report.reporter_kind,), report.reporter_name)
    if problems:
        raise Invalid("; ".join(problems), problems=problems)


def people_problems(field: str, kinds: tuple[str, ...], names: str) -> list[str]:
    """Kinds of people from rules.PEOPLE_KINDS; names only of councillors or contractors."""
    problems = [
        f"{field}: unknown {code!r} (one of {', '.join(PEOPLE_KINDS)})"
        for code in kinds
        if code not in PEOPLE_KINDS
    ]
    if names.strip() and set(kinds) <= {"staff"}:
        problems.append(
            f"{field}: names are given only for councillors or contractors (staff are "
            "known by their sign-in)"
        )
    return problems


def report_incident(ctx: ServiceContext, report: IncidentReport) -> Incident:
    """Record an incident reported by the signed-in member of staff."""
    session, actor = ctx.session, ctx.actor
    now = ctx.now()
    _check_codes(ctx.settings, report, now)
    subject = subjects.get_or_create(session, report.kind, report.ref)
    incident = Incident(
        subject_id=subject.id,
        reported_by=actor.id,
        occurred_at=report.occurred_at,
        recorded_at=now,
        channel=report.channel,
        behaviour_types=list(report.behaviour_types),
        warning_given=report.warning_given,
        reporter_kind=report.reporter_kind,
        external_references=[
            {"system": system, "ref": reference.strip()}
            for system, reference in report.external_references
        ],
    )
    incident.seal(ctx.keyring, "narrative", report.narrative)
    incident.seal(ctx.keyring, "reporter_name", report.reporter_name.strip() or None)
    session.add(incident)
    remember(session, actor.id, actor.name, actor.roles)
    audit.append(
        session,
        audit.AuditEvent(
            action="incident.create",
            subject_kind=subject.kind,
            subject_ref=subject.ref,
            outcome_reason=f"incident {incident.id}",
            **audit_actor(actor),
        ),
    )
    return incident


def triage(
    ctx: ServiceContext,
    incident_id: str,
    outcome: str,
    considerations: dict[str, Any],
    reference: str = "",
) -> Incident:
    """A manager's decision on an incident, after York's four considerations; a referral to
    the police or legal action carries the other body's reference."""
    session, actor = ctx.session, ctx.actor
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"no incident {incident_id}")
    if incident.triage is not None:
        raise Conflict(f"incident {incident_id} was already triaged ({incident.triage})")
    if outcome not in TRIAGE_OUTCOMES:
        raise Invalid(f"outcome must be one of {', '.join(TRIAGE_OUTCOMES)}, not {outcome!r}")
    offered = ctx.settings.policy.triage_outcomes
    if outcome not in offered:
        raise Invalid(
            f"outcome {outcome!r} is not one of this council's triage outcomes "
            f"(policy.triage_outcomes): {', '.join(offered)}"
        )
    missing = [name for name in TRIAGE_CONSIDERATIONS if considerations.get(name) in (None, "")]
    if missing:
        raise Invalid(f"record each consideration first; missing: {', '.join(missing)}")
    reference = reference.strip()
    if outcome in REFERENCED_OUTCOMES and not reference:
        raise Invalid(f"give the {REFERENCE_NAMES[outcome]} (reference)")
    if outcome not in REFERENCED_OUTCOMES and reference:
        raise Invalid(
            f"a reference is recorded only for {' or '.join(sorted(REFERENCED_OUTCOMES))}"
        )
    incident.triage = outcome
    incident.triage_by = actor.id
    incident.triage_at = ctx.now()
    incident.triage_considerations = {
        "considered": list(TRIAGE_CONSIDERATIONS),
        "known_to_council": bool(considerations["known_to_council"]),
    }
    incident.seal(ctx.keyring, "triage_notes", json.dumps(considerations, sort_keys=True))
    incident.seal(ctx.keyring, "triage_reference", reference or None)
    subject = session.get(Subject, incident.subject_id)
    remember(session, actor.id, actor.name, actor.roles)
    audit.append(
        session,
        audit.AuditEvent(
            action="incident.triage",
            subject_kind=subject.kind if subject else None,
            subject_ref=subject.ref if subject else None,
            outcome_reason=f"incident {incident.id}: {outcome}",
            **audit_actor(actor),
        ),
    )
    return incident


def reporter_json(keyring: KeyRing, incident: Incident, *, confidential: bool) -> dict[str, Any]:
    """Whom the incident happened to; a councillor's or contractor's name only `confidential`."""
    kind = incident.reporter_kind or "staff"
    return {
        "kind": kind,
        "label": PEOPLE_KINDS[kind],
        "name": incident.unseal(keyring, "reporter_name") if confidential else None,
    }


def incident_json(
    settings: Settings,
    keyring: KeyRing,
    incident: Incident,
    subject: Subject,
    *,
    confidential: bool,
) -> dict[str, Any]:
    """An incident as case workers read it; its narrative and triage considerations are
    opened only when `confidential` (the details rule, decided and audited by the caller)."""
    notes = incident.unseal(keyring, "triage_notes") if confidential else None
    return {
        "id": incident.id,
        "subject": {"kind": subject.kind, "ref": subject.ref},
        "reported_by": incident.reported_by,
        "reporter": reporter_json(keyring, incident, confidential=confidential),
        "occurred_at": incident.occurred_at.isoformat(),
        "recorded_at": incident.recorded_at.isoformat(),
        "channel": incident.channel,
        "channel_label": settings.label("channels", incident.channel),
        "behaviour_types": list(incident.behaviour_types),
        "behaviour_labels": [
            settings.label("behaviour_types", c) for c in incident.behaviour_types
        ],
        "warning_given": incident.warning_given,
        "external_references": [
            {**item, "label": settings.label("external_references", item["system"])}
            for item in incident.external_references or []
        ],
        "confidential_included": confidential,
        "narrative": incident.unseal(keyring, "narrative") if confidential else None,
        "triage": None
        if incident.triage is None
        else {
            "outcome": incident.triage,
            "by": incident.triage_by,
            "at": incident.triage_at.isoformat() if incident.triage_at else None,
            "considerations": json.loads(notes) if notes else None,
            "reference": incident.unseal(keyring, "triage_reference") if confidential else None,
        },
    }


def read_reason(count: int, opened: list[str]) -> str:
    """The audit entry's outcome of reading `count` incidents, `opened` the bases of those
    whose narratives were disclosed."""
    if not opened:
        return f"{count} incidents, none with its narrative"
    return f"{count} incidents, {len(opened)} with narratives ({opened[0]})"


def incidents_of(session: Session, kind: str, ref: str) -> tuple[Subject | None, list[Incident]]:
    subject = subjects.find(session, kind, ref)
    if subject is None:
        return None, []
    found = session.scalars(
        select(Incident)
        .where(Incident.subject_id == subject.id)
        .order_by(Incident.occurred_at, Incident.id)
    )
    return subject, list(found)
