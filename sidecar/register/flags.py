"""Flags from proposal to their end: proposal, case review panel, variation, withdrawal,
expiry and the purge of confidential fields after the retention period."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sidecar.lookup.models import AccessGrant
from sidecar.notify import events as notifications
from sidecar.register import flag_references, history, subjects
from sidecar.register.case_models import (
    Appeal,
    AppealDecision,
    FlagIncident,
    Letter,
    Notice,
    PanelDecision,
    Review,
    WithholdingGuidance,
)
from sidecar.register.context import ServiceContext
from sidecar.register.incidents import people_problems
from sidecar.register.models import Flag, Incident
from sidecar.register.rules import (
    ENDED,
    Action,
    Conflict,
    FlagTerms,
    Invalid,
    NotFound,
    PanelVote,
    Restriction,
    Seats,
    State,
    add_months,
    awaiting_roles,
    check_panel_vote,
    check_terms,
    panel_outcome,
    purge_due,
    require,
)
from sidecar.register.status import restriction_label, status_changed
from sidecar.settings import Settings
from sidecar.storage.database import Confidential


@dataclass(frozen=True)
class Proposal:
    kind: str
    ref: str
    terms: FlagTerms
    reason: str
    control_measures: str
    responsible_manager: str
    reasonable_adjustments: str = ""
    review_months: int | None = None
    incident_ids: tuple[str, ...] = ()
    warning_given_on: date | None = None
    no_warning_reason: str = ""
    protects: tuple[str, ...] = ("staff",)
    protected_people: str = ""
    """The particular councillors or contractors the flag protects, by name (sealed)."""


@dataclass(frozen=True)
class TermsChange:
    """A variation: each field given replaces the flag's own."""

    level: str | None = None
    categories: tuple[str, ...] | None = None
    restrictions: tuple[Restriction, ...] | None = None
    handling: str | None = None
    ends_on: date | None = None
    adjustments: tuple[str, ...] | None = None
    changed: frozenset[str] = field(default_factory=frozenset)


def check_catalogue_terms(settings: Settings, terms: FlagTerms, today: date) -> None:
    check_terms(
        terms,
        settings.catalogue.levels,
        settings.catalogue.categories,
        settings.catalogue.restrictions,
        today,
    )


def default_handling(settings: Settings, terms: FlagTerms) -> str:
    """Without a recommended staff action, the banner says what the restrictions are."""
    return "; ".join(restriction_label(settings, r.as_json()) for r in terms.restrictions)


def load(session: Session, flag_id: str, *, for_update: bool = False) -> Flag:
    query = select(Flag).where(Flag.id == flag_id)
    if for_update:
        query = query.with_for_update()
    flag = session.scalars(query).first()
    if flag is None:
        raise NotFound(f"no flag {flag_id}")
    return flag


def _set_terms(settings: Settings, flag: Flag, terms: FlagTerms, handling: str) -> None:
    flag.level = terms.level
    flag.categories = list(terms.categories)
    flag.restrictions = [r.as_json() for r in terms.restrictions]
    flag.handling = handling or default_handling(settings, terms)
    flag.ends_on = terms.ends_on
    flag.adjustments = [a.strip() for a in terms.adjustments if a.strip()]


def _warning_problems(settings: Settings, proposal: Proposal, today: date) -> list[str]:
    """A warning before restricting contact (York, Eastleigh, Workington): when it was given,
    or why it was not (an extreme case, such as a physical threat); never both."""
    given, why_not = proposal.warning_given_on, proposal.no_warning_reason.strip()
    if given is not None and why_not:
        return ["give either warning_given_on or no_warning_reason, not both"]
    if given is not None and not date(2000, 1, 1) <= given <= today:
        return [f"warning_given_on must be between 2000-01-01 and today ({today})"]
    if settings.policy.warning_before_flag == "require" and given is None and not why_not:
        return [
            "say when the person was warned (warning_given_on) or why they were not "
            "(no_warning_reason): the policy warns before restricting contact"
        ]
    return []


def propose(ctx: ServiceContext, proposal: Proposal) -> Flag:
    """Record a proposal; it waits for the case review panel."""
    session, settings, keyring = ctx.session, ctx.settings, ctx.keyring
    now = ctx.now()
    check_catalogue_terms(settings, proposal.terms, now.date())
    problems = [
        f"{name} is empty"
        for name, value in (
            ("reason", proposal.reason),
            ("control_measures", proposal.control_measures),
            ("responsible_manager", proposal.responsible_manager),
        )
        if not value.strip()
    ]
    problems += _warning_problems(settings, proposal, now.date())
    if not proposal.protects:
        problems.append("protects: name whom the flag protects (staff, councillor, contractor)")
    problems += people_problems("protects", proposal.protects, proposal.protected_people)
    if problems:
        raise Invalid("; ".join(problems), problems=problems)
    subject = subjects.get_or_create(session, proposal.kind, proposal.ref)
    incidents = _incidents(session, proposal.incident_ids)
    flag = Flag(
        subject=subject,
        state=State.PROPOSED.value,
        responsible_manager=proposal.responsible_manager.strip(),
        review_months=proposal.review_months or settings.policy.review_period_months,
        provenance="register",
        proposed_by=ctx.actor.id,
        proposed_at=now,
    )
    _set_terms(settings, flag, proposal.terms, proposal.terms.handling)
    flag.seal(keyring, "reason", proposal.reason)
    flag.seal(keyring, "control_measures", proposal.control_measures)
    flag.seal(keyring, "reasonable_adjustments", proposal.reasonable_adjustments or None)
    flag.warning_given_on = proposal.warning_given_on
    flag.seal(keyring, "no_warning_reason", proposal.no_warning_reason.strip() or None)
    flag.protects = list(dict.fromkeys(proposal.protects))
    flag.seal(keyring, "protected_people", proposal.protected_people.strip() or None)
    session.add(flag)
    session.flush()
    flag_references.ensure_reference(session, flag)
    notifications.proposed(session, settings, flag)
    for incident in incidents:
        session.add(FlagIncident(flag_id=flag.id, incident_id=incident.id))
    history.record(
        ctx,
        flag,
        "proposed",
        f"proposed a {flag.level} flag for case review",
        from_state=None,
        facts={"level": flag.level, "categories": flag.categories},
        at=now,
    )
    return flag


def _incidents(session: Session, ids: tuple[str, ...]) -> list[Incident]:
    found = {i.id: i for i in session.scalars(select(Incident).where(Incident.id.in_(ids)))}
    missing = [i for i in ids if i not in found]
    if missing:
        raise Invalid(f"unknown incident {missing[0]!r}", unknown_incidents=missing)
    return [found[i] for i in dict.fromkeys(ids)]


def votes_of(session: Session, flag: Flag) -> list[PanelVote]:
    decisions = session.scalars(
        select(PanelDecision)
        .where(PanelDecision.flag_id == flag.id)
        .order_by(PanelDecision.decided_at)
    )
    return [PanelVote(d.role, d.decided_by, d.decision) for d in decisions]


@dataclass(frozen=True)
class Assessment:
    severity: str
    frequency: str
    proportionality: str
    reasonable_adjustments: str


def decide_panel(
    ctx: ServiceContext, flag_id: str, role: str, decision: str, assessment: Assessment
) -> Flag:
    """One panel member's decision; the flag goes live once the panel's approvals are in
    (by default the third, from three distinct people)."""
    session, actor = ctx.session, ctx.actor
    now = ctx.now()
    flag = load(session, flag_id, for_update=True)
    require(flag.state, Action.PANEL_DECISION)
    missing = [name for name, value in vars(assessment).items() if not value.strip()]
    if missing:
        raise Invalid(f"record the assessment: missing {', '.join(missing)}")
    votes = votes_of(session, flag)
    vote = PanelVote(role, actor.id, decision)
    panel = Seats.of(ctx.settings.panel)
    check_panel_vote(votes, vote, actor.roles, panel)
    row = PanelDecision(
        flag_id=flag.id,
        role=role,
        decision=decision,
        decided_by=actor.id,
        decided_by_name=actor.name,
        decided_at=now,
    )
    row.seal(ctx.keyring, "severity", assessment.severity)
    row.seal(ctx.keyring, "frequency", assessment.frequency)
    row.seal(ctx.keyring, "proportionality", assessment.proportionality)
    row.seal(ctx.keyring, "reasonable_adjustments", assessment.reasonable_adjustments)
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        # Another request recorded the same role or person first.
        raise Conflict("this panel role or member has already decided on this flag") from None
    votes.append(vote)
    before = flag.state
    outcome = panel_outcome(votes, panel)
    flag.state = outcome.value
    # The assessment stays in the sealed panel decision, never in the readable history.
    facts = {"role": role, "decision": decision}
    if outcome is State.ACTIVE:
        flag.activated_at = now
        flag.review_due = add_months(now.date(), flag.review_months)
        why = f"{role} approved; {panel.describe()}: the flag is active"
    elif outcome is State.REJECTED:
        flag.ended_at = now
        why = f"{role} rejected the proposal: the flag will not be raised"
    else:
        said = "approved" if decision == "approve" else "rejected"
        why = f"{role} {said}; awaiting {', '.join(awaiting_roles(votes, panel))}"
    history.record(ctx, flag, f"panel_{decision}", why, from_state=before, facts=facts, at=now)
    if outcome is State.ACTIVE:
        status_changed(session, flag.subject)
    return flag


def vary(settings: Settings, flag: Flag, change: TermsChange, today: date) -> dict[str, Any]:
    """Apply a variation to an active flag's terms; return what changed (before/after)."""
    current = FlagTerms(
        level=flag.level,
        categories=tuple(flag.categories),
        restrictions=tuple(
            Restriction(
                r["code"],
                r.get("note") or "",
                date.fromisoformat(r["ends_on"]) if r.get("ends_on") else None,
            )
            for r in flag.restrictions or []
        ),
        handling=flag.handling,
        ends_on=flag.ends_on,
        adjustments=tuple(flag.adjustments or ()),
    )
    new = FlagTerms(
        level=change.level if "level" in change.changed else current.level,
        categories=change.categories if "categories" in change.changed else current.categories,
        restrictions=(
            change.restrictions if "restrictions" in change.changed else current.restrictions
        ),
        handling=change.handling if "handling" in change.changed else current.handling,
        ends_on=change.ends_on if "ends_on" in change.changed else current.ends_on,
        adjustments=(
            change.adjustments or () if "adjustments" in change.changed else current.adjustments
        ),
    )
    check_catalogue_terms(settings, new, today)
    before = {
        "level": flag.level,
        "categories": list(flag.categories),
        "restrictions": list(flag.restrictions or []),
        "ends_on": _iso(flag.ends_on),
        "adjustments": list(flag.adjustments or []),
    }
    if "handling" in change.changed:
        handling = new.handling
    elif flag.handling == default_handling(settings, current):
        handling = ""  # it was derived from the restrictions: derive it again
    else:
        handling = flag.handling
    _set_terms(settings, flag, new, handling or "")
    after = {
        "level": flag.level,
        "categories": list(flag.categories),
        "restrictions": list(flag.restrictions or []),
        "ends_on": _iso(flag.ends_on),
        "adjustments": list(flag.adjustments or []),
    }
    return {"before": before, "after": after}


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def end(session: Session, flag: Flag, state: State, now: datetime) -> None:
    """Close an active or proposed flag; an active flag leaves the banner."""
    was_active = flag.state == State.ACTIVE.value
    flag.state = state.value
    flag.ended_at = now
    if was_active:
        status_changed(session, flag.subject)


WITHDRAWN_WHY = "withdrawn; the reason is kept with the flag's confidential details"


def withdraw(ctx: ServiceContext, flag_id: str, reason: str) -> Flag:
    """End a proposed or active flag early, saying why."""
    now = ctx.now()
    if not reason.strip():
        raise Invalid("say why the flag is withdrawn (reason)")
    flag = load(ctx.session, flag_id, for_update=True)
    require(flag.state, Action.WITHDRAW)
    before = flag.state
    end(ctx.session, flag, State.WITHDRAWN, now)
    flag.seal(ctx.keyring, "withdrawal_reason", reason.strip())
    _close_pending_appeals(ctx.session, flag)
    # The reason may name the person's circumstances: the history and the audit entry say
    # only that the flag was withdrawn.
    history.record(ctx, flag, "withdrawn", WITHDRAWN_WHY, from_state=before, at=now)
    return flag


def _close_pending_appeals(session: Session, flag: Flag) -> None:
    """An appeal against a flag that no longer exists has nothing left to decide."""
    for appeal in session.scalars(
        select(Appeal).where(Appeal.flag_id == flag.id, Appeal.outcome.is_(None))
    ):
        appeal.outcome = "closed"


def expire_due(ctx: ServiceContext) -> list[Flag]:
    """End every active flag whose own end date has passed."""
    session = ctx.session
    now = ctx.now()
    flags = session.scalars(
        select(Flag).where(Flag.state == State.ACTIVE.value, Flag.ends_on < now.date())
    ).all()
    for flag in flags:
        end(session, flag, State.EXPIRED, now)
        _close_pending_appeals(session, flag)
        history.record(
            ctx,
            flag,
            "expired",
            f"the flag's end date {flag.ends_on} passed",
            from_state=State.ACTIVE.value,
            at=now,
        )
    return list(flags)


def purge_ended(ctx: ServiceContext) -> list[Flag]:
    """Clear the confidential texts of flags ended longer ago than the retention period.

    Every sealed field of the case goes: the flag's reason, measures, adjustments and
    withdrawal reason, the panel's assessments, the notice's recipient and withheld reason,
    the letters, appeal grounds and reasons, review notes; the narratives and considerations
    of incidents no unpurged flag still relies on; and the reason texts of access grants made
    while only this flag could be opened. What stays is the decision record: history, who
    decided what and when, notice method, appeal and review outcomes, the letters' dates and
    signatories, the grants' reason codes.
    """
    session = ctx.session
    now = ctx.now()
    months = ctx.settings.policy.retention_months_after_end
    candidates = session.scalars(
        select(Flag).where(
            Flag.state.in_([s.value for s in ENDED]),
            Flag.ended_at.is_not(None),
            Flag.purged_at.is_(None),
        )
    ).all()
    purged = []
    for flag in candidates:
        if not purge_due(flag.ended_at, False, now, months):
            continue
        _clear_sealed(flag)
        for model in (
            PanelDecision,
            Notice,
            Letter,
            Appeal,
            AppealDecision,
            Review,
            WithholdingGuidance,
        ):
            for row in session.scalars(select(model).where(model.flag_id == flag.id)):
                _clear_sealed(row)
        flag.purged_at = now
        session.flush()
        _purge_incidents(session, flag)
        _purge_grant_reasons(session, flag)
        history.record(
            ctx,
            flag,
            "purged",
            f"confidential details cleared {months} months after the flag ended",
            from_state=flag.state,
            at=now,
        )
        purged.append(flag)
    return purged


def _clear_sealed(row: Confidential) -> None:
    for column in row.__encrypted__:
        setattr(row, column, None)


def _purge_incidents(session: Session, flag: Flag) -> None:
    """Clear the incidents this flag relied on, unless a flag not yet purged relies on them."""
    still_needed = (
        select(FlagIncident.incident_id)
        .join(Flag, Flag.id == FlagIncident.flag_id)
        .where(Flag.purged_at.is_(None))
    )
    for incident in session.scalars(
        select(Incident)
        .join(FlagIncident, FlagIncident.incident_id == Incident.id)
        .where(FlagIncident.flag_id == flag.id, Incident.id.not_in(still_needed))
    ):
        _clear_sealed(incident)


def _purge_grant_reasons(session: Session, flag: Flag) -> None:
    """Clear the reason texts of grants made while this flag was live, unless another flag
    on the subject, not yet purged, was live then too (the grant served it as well)."""
    if flag.activated_at is None:
        return  # never live: no grant could open it
    subject = flag.subject
    others = session.scalars(
        select(Flag).where(
            Flag.subject_id == flag.subject_id,
            Flag.id != flag.id,
            Flag.purged_at.is_(None),
            Flag.activated_at.is_not(None),
        )
    ).all()
    ended = flag.ended_at or flag.activated_at
    for grant in session.scalars(
        select(AccessGrant).where(
            AccessGrant.subject_kind == subject.kind,
            AccessGrant.subject_ref == subject.ref,
            AccessGrant.created_at >= flag.activated_at,
            AccessGrant.created_at <= ended,
        )
    ):
        if not any(_live_at(other, grant.created_at) for other in others):
            grant.reason_text = ""


def _live_at(flag: Flag, moment: datetime) -> bool:
    return (
        flag.activated_at is not None
        and flag.activated_at <= moment
        and (flag.ended_at is None or moment <= flag.ended_at)
    )
