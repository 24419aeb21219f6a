"""What console pages read, through the register's own services, and the audit each read needs.

Each function reads in the caller's session and returns plain values; the page writes the
audit entries returned with them (after the read, before anything is shown), as the API's
call for the same data does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sidecar.audit.writer import AuditEvent
from sidecar.console.queues import Page, page_of
from sidecar.lookup.service import incident_access, may_read_details
from sidecar.register import flags, incidents, records, subjects
from sidecar.register.models import Flag, Incident, Subject, SubjectLink
from sidecar.register.rules import NotFound
from sidecar.register.staff import name_of
from sidecar.runtime import Runtime


@dataclass
class SubjectRecord:
    """A subject as its page shows it: flags with history and letters, links, incidents."""

    kind: str
    ref: str
    known: bool
    flags: list[dict[str, Any]] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    incidents: Page | None = None
    audit: list[AuditEvent] = field(default_factory=list)


def subject_record(
    session: Session,
    runtime: Runtime,
    kind: str,
    ref: str,
    *,
    with_incidents: bool,
    incident_page: int,
    now: datetime,
) -> SubjectRecord:
    """The subject's record; incidents (with their narratives) only `with_incidents`."""
    ref = subjects.normalise_ref(kind, ref)
    subject = subjects.find(session, kind, ref)
    if subject is None:
        return SubjectRecord(kind, ref, known=False)
    found = SubjectRecord(kind, ref, known=True, links=_links(session, subject))
    for flag in session.scalars(
        select(Flag).where(Flag.subject_id == subject.id).order_by(Flag.proposed_at.desc())
    ):
        # The record without its confidential fields, as GET /api/v1/flags/{id} gives a
        # reader with no business need, and audited as that call audits it.
        body = records.flag_json(
            session, runtime.settings, runtime.keyring, flag, confidential=False, now=now
        )
        found.flags.append(body)
        found.audit.append(
            AuditEvent(
                action="flag.read",
                flag_id=flag.id,
                subject_kind=kind,
                subject_ref=ref,
                outcome_reason="record without confidential details",
            )
        )
    if with_incidents:
        query = (
            select(Incident)
            .where(Incident.subject_id == subject.id)
            .order_by(Incident.occurred_at.desc(), Incident.id)
        )
        shown = page_of(session, query, incident_page)
        decisions = incident_access(session, shown.rows, subject, now)
        # As GET /api/v1/incidents?kind=&ref= audits the incidents it returns.
        found.audit.append(
            AuditEvent(
                action="incident.read",
                subject_kind=kind,
                subject_ref=ref,
                outcome_reason=incidents.read_reason(
                    len(shown.rows), [d.basis for d in decisions.values() if d.allowed]
                ),
            )
        )
        shown.rows = [
            incident_view(session, runtime, i, subject, confidential=decisions[i.id].allowed)
            for i in shown.rows
        ]
        found.incidents = shown
    return found


def _links(session: Session, subject: Subject) -> list[str]:
    if subject.kind == "customer":
        return [p.ref for p in subjects.linked_properties(session, subject)]
    return list(
        session.scalars(
            select(Subject.ref)
            .join(SubjectLink, SubjectLink.customer_id == Subject.id)
            .where(SubjectLink.property_id == subject.id)
            .order_by(Subject.ref)
        )
    )


def incident_view(
    session: Session, runtime: Runtime, incident: Incident, subject: Subject, *, confidential: bool
) -> dict[str, Any]:
    """An incident as the API gives it to case workers, with the reporter's name."""
    body = incidents.incident_json(
        runtime.settings, runtime.keyring, incident, subject, confidential=confidential
    )
    body["reported_by_name"] = name_of(session, incident.reported_by)
    return body


def incident_summary(session: Session, runtime: Runtime, incident: Incident) -> dict[str, Any]:
    """An incident without its narrative, for lists that anyone triaging may see."""
    subject = session.get(Subject, incident.subject_id)
    settings = runtime.settings
    return {
        "id": incident.id,
        "subject": {"kind": subject.kind, "ref": subject.ref} if subject else None,
        "occurred_at": incident.occurred_at,
        "recorded_at": incident.recorded_at,
        "channel_label": settings.label("channels", incident.channel),
        "behaviour_labels": [
            settings.label("behaviour_types", c) for c in incident.behaviour_types
        ],
        "reported_by_name": name_of(session, incident.reported_by),
        # The councillor's or contractor's name is confidential: opened with the narrative.
        "reporter": incidents.reporter_json(runtime.keyring, incident, confidential=False),
        "warning_given": incident.warning_given,
        "triage": incident.triage,
    }


def incident_for_triage(
    session: Session, runtime: Runtime, incident_id: str, now: datetime
) -> tuple[dict[str, Any], list[AuditEvent]]:
    """One incident for its triage page; its narrative (audited) only where it may be shown.

    The narrative opens under the details rule, and to the manager about to triage it while
    it awaits triage: deciding on it is their part in its case (the page needs
    incident.triage).
    """
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"no incident {incident_id}")
    summary = incident_summary(session, runtime, incident)
    subject = session.get(Subject, incident.subject_id)
    assert subject is not None
    decision = incident_access(session, [incident], subject, now)[incident.id]
    if incident.triage is not None and not decision.allowed:
        return summary, []
    summary["narrative"] = incident.unseal(runtime.keyring, "narrative")
    summary["reporter"] = incidents.reporter_json(runtime.keyring, incident, confidential=True)
    basis = decision.basis if decision.allowed else "awaiting the reader's triage"
    event = AuditEvent(
        action="incident.read",
        subject_kind=subject.kind,
        subject_ref=subject.ref,
        outcome_reason=f"incident {incident.id} ({basis})",
    )
    return summary, [event]


def flag_case(
    session: Session, runtime: Runtime, flag_id: str, *, now: datetime, with_details: bool = False
) -> tuple[dict[str, Any], AuditEvent]:
    """A flag's record as GET /api/v1/flags/{id} gives it to the caller, and its audit entry.

    Its confidential fields are opened only `with_details` and where the access policy lets
    the caller read them (a relationship to the case or a live grant).
    """
    flag = flags.load(session, flag_id)
    decision = may_read_details(session, flag, now) if with_details else None
    opened = decision is not None and decision.allowed
    body = records.flag_json(
        session, runtime.settings, runtime.keyring, flag, confidential=opened, now=now
    )
    body["proposed_by_name"] = name_of(session, flag.proposed_by)
    body["responsible_manager_name"] = name_of(session, flag.responsible_manager)
    event = AuditEvent(
        action="flag.read",
        flag_id=flag_id,
        subject_kind=flag.subject.kind,
        subject_ref=flag.subject.ref,
        outcome_reason=f"record with confidential details ({decision.basis})"
        if decision is not None and decision.allowed
        else "record without confidential details",
    )
    return body, event
