"""The decision log: dated decisions on how the council handles a person's contact.

Eastleigh's policy keeps a record of each decision not to put a further complaint on the same
matter through the complaints procedure, not to answer further correspondence on it, and to
restrict correspondence to a single point of contact, each with the reason and who decided;
and of each exception made to the policy once a flag is applied. Each entry here is one such
decision, recorded by the Customer Support Manager who keeps the records, and lifted (never
deleted) when it no longer applies. The matter and the reasons are sealed; they are read under
the details rule, as a flag's reasons are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select

from sidecar.audit import writer as audit
from sidecar.lookup.service import live_grants
from sidecar.policy import access
from sidecar.policy.access import DETAILS_READ, Decision, FlagResource, GrantScope
from sidecar.register import subjects
from sidecar.register.case_models import ContactDecision, StaffMember
from sidecar.register.context import ServiceContext
from sidecar.register.history import audit_actor
from sidecar.register.models import Flag, Subject
from sidecar.register.rules import Conflict, Invalid, NotFound, State
from sidecar.register.staff import remember, shown_name

NEEDS_CONTACT = "single_point_of_contact"
NEEDS_FLAG = "policy_exception"
EARLIEST = date(2000, 1, 1)


@dataclass(frozen=True)
class DecisionRecord:
    """A decision as the Customer Support Manager records it."""

    kind: str
    subject_kind: str
    subject_ref: str
    matter: str
    reason: str
    decided_by: str
    decided_on: date
    contact: str = ""
    flag_id: str | None = None


def record(ctx: ServiceContext, entry: DecisionRecord) -> ContactDecision:
    """Add a decision to the subject's log; every problem is named, and nothing is written."""
    session, actor = ctx.session, ctx.actor
    today = ctx.now().date()
    problems = _problems(ctx, entry, today)
    if problems:
        raise Invalid("; ".join(problems), problems=problems)
    subject = subjects.get_or_create(session, entry.subject_kind, entry.subject_ref)
    flag_id = None
    if entry.kind == NEEDS_FLAG:
        flag_id = _active_flag_of(ctx, subject, entry.flag_id).id
    decision = ContactDecision(
        subject_id=subject.id,
        kind=entry.kind,
        flag_id=flag_id,
        contact=entry.contact.strip(),
        decided_by=entry.decided_by.strip(),
        decided_on=entry.decided_on,
        recorded_by=actor.id,
        recorded_at=ctx.now(),
    )
    decision.seal(ctx.keyring, "matter", entry.matter.strip() or None)
    decision.seal(ctx.keyring, "reason", entry.reason.strip())
    session.add(decision)
    remember(session, actor.id, actor.name, actor.roles)
    audit.append(
        session,
        audit.AuditEvent(
            action="decision.record",
            subject_kind=subject.kind,
            subject_ref=subject.ref,
            flag_id=flag_id,
            outcome_reason=f"decision {decision.id}: {entry.kind}",
            **audit_actor(actor),
        ),
    )
    return decision


def _problems(ctx: ServiceContext, entry: DecisionRecord, today: date) -> list[str]:
    kinds = ctx.settings.catalogue.contact_decisions
    problems = []
    if entry.kind not in kinds:
        problems.append(f"kind must be one of {', '.join(kinds)}, not {entry.kind!r}")
    if not entry.reason.strip():
        problems.append("reason is empty")
    if entry.kind != NEEDS_FLAG and not entry.matter.strip():
        problems.append("matter is empty: say which matter the decision is about")
    if entry.kind == NEEDS_CONTACT and not entry.contact.strip():
        problems.append("contact is empty: name the single point of contact")
    if entry.kind == NEEDS_FLAG and not entry.flag_id:
        problems.append("flag_id is empty: an exception is made to an applied flag")
    if not EARLIEST <= entry.decided_on <= today:
        problems.append(f"decided_on must be between {EARLIEST} and today ({today})")
    if ctx.session.get(StaffMember, entry.decided_by.strip()) is None:
        problems.append(f"decided_by {entry.decided_by!r} is not in the staff directory")
    return problems


def _active_flag_of(ctx: ServiceContext, subject: Subject, flag_id: str | None) -> Flag:
    flag = ctx.session.get(Flag, flag_id) if flag_id else None
    if flag is None or flag.subject_id != subject.id:
        raise Invalid(
            f"flag_id {flag_id!r} is not a flag of {subject.kind} {subject.ref}",
            problems=[f"flag_id {flag_id!r} is not a flag of this subject"],
        )
    if flag.state != State.ACTIVE.value:
        raise Invalid(
            f"flag {flag.id} is {flag.state}: an exception is made to an applied flag",
            problems=["flag_id names a flag that is not active"],
        )
    return flag


def lift(
    ctx: ServiceContext, decision_id: str, reason: str, decided_by: str, lifted_on: date
) -> ContactDecision:
    """Record that a decision no longer applies, why and who decided; the entry stays."""
    session = ctx.session
    decision = session.get(ContactDecision, decision_id)
    if decision is None:
        raise NotFound(f"no decision {decision_id}")
    if decision.lifted_on is not None:
        raise Conflict(f"decision {decision_id} was lifted on {decision.lifted_on.isoformat()}")
    problems = []
    if not reason.strip():
        problems.append("reason is empty")
    if session.get(StaffMember, decided_by.strip()) is None:
        problems.append(f"decided_by {decided_by!r} is not in the staff directory")
    if not decision.decided_on <= lifted_on <= ctx.now().date():
        problems.append("lifted_on must be between the decision's date and today")
    if problems:
        raise Invalid("; ".join(problems), problems=problems)
    decision.lifted_on = lifted_on
    decision.lifted_by = decided_by.strip()
    decision.seal(ctx.keyring, "lift_reason", reason.strip())
    subject = session.get(Subject, decision.subject_id)
    assert subject is not None
    audit.append(
        session,
        audit.AuditEvent(
            action="decision.lift",
            subject_kind=subject.kind,
            subject_ref=subject.ref,
            flag_id=decision.flag_id,
            outcome_reason=f"decision {decision.id} lifted",
            **audit_actor(ctx.actor),
        ),
    )
    return decision


def log_of(ctx: ServiceContext, kind: str, ref: str) -> tuple[list[ContactDecision], Decision]:
    """The subject's decisions, newest first, and whether the caller may read their reasons.

    The reasons follow the details rule: `details.request` and a business need, which is a
    live access grant for the subject or a part in the decisions (deciding or recording one).
    """
    subject = subjects.find(ctx.session, kind, ref)
    if subject is None:
        return [], Decision(False, "no decisions recorded")
    rows = list(
        ctx.session.scalars(
            select(ContactDecision)
            .where(ContactDecision.subject_id == subject.id)
            .order_by(ContactDecision.decided_on.desc(), ContactDecision.recorded_at.desc())
        )
    )
    if not rows:
        return [], Decision(False, "no decisions recorded")
    return rows, _may_read_reasons(ctx, subject, rows)


def _may_read_reasons(
    ctx: ServiceContext, subject: Subject, rows: list[ContactDecision]
) -> Decision:
    relations: dict[str, set[str]] = {}
    for row in rows:
        for person in (row.decided_by, row.recorded_by, row.lifted_by):
            if person:
                relations.setdefault(person, set()).add("decision_maker")
    grants = live_grants(ctx.session, ctx.actor.id, subject.kind, subject.ref, ctx.now())
    resource = FlagResource(
        flag_id=f"decisions:{subject.id}",
        subject_kind=subject.kind,
        subject_ref=subject.ref,
        relations={user: frozenset(held) for user, held in relations.items()},
        grants=tuple(
            GrantScope(g.id, g.user_id, g.subject_kind, g.subject_ref, g.expires_at) for g in grants
        ),
    )
    return access.decide(ctx.actor, DETAILS_READ, resource)  # type: ignore[arg-type]


def entry_json(
    ctx: ServiceContext, row: ContactDecision, names: dict[str, str], *, reasons: bool
) -> dict[str, Any]:
    """One decision as the log shows it; the matter and reasons only with `reasons`."""
    settings = ctx.settings
    body: dict[str, Any] = {
        "id": row.id,
        "kind": row.kind,
        "kind_label": settings.catalogue.contact_decisions.get(row.kind, row.kind),
        "flag_id": row.flag_id,
        "contact": row.contact or None,
        "decided_by": {
            "id": row.decided_by,
            "name": shown_name(row.decided_by, names.get(row.decided_by)),
        },
        "decided_on": row.decided_on.isoformat(),
        "recorded_by": row.recorded_by,
        "recorded_at": row.recorded_at.isoformat(),
        "lifted": None
        if row.lifted_on is None
        else {
            "on": row.lifted_on.isoformat(),
            "by": {
                "id": row.lifted_by,
                "name": shown_name(row.lifted_by, names.get(row.lifted_by or "")),
            },
        },
    }
    if reasons:
        body["matter"] = row.unseal(ctx.keyring, "matter")
        body["reason"] = row.unseal(ctx.keyring, "reason")
        if row.lifted_on is not None:
            body["lifted"]["reason"] = row.unseal(ctx.keyring, "lift_reason")
    return body


def directory_names(ctx: ServiceContext, rows: list[ContactDecision]) -> dict[str, str]:
    """The directory's names of everyone the rows name, in one query."""
    people = {p for row in rows for p in (row.decided_by, row.lifted_by) if p}
    if not people:
        return {}
    found = ctx.session.execute(
        select(StaffMember.id, StaffMember.name).where(StaffMember.id.in_(people))
    )
    return {member_id: name for member_id, name in found if name}
