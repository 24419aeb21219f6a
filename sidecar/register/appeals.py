"""Appeals: lodged within the window, handled by a Senior Manager, decided by an uninvolved
Service Director, each outcome told to the person in a letter."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from sidecar.policy.involvement import involvement
from sidecar.register import flags as flag_service
from sidecar.register import history, notices
from sidecar.register.case_models import Appeal, Letter, PanelDecision
from sidecar.register.context import ServiceContext
from sidecar.register.models import Flag
from sidecar.register.rules import (
    APPEAL_OUTCOMES,
    Action,
    Conflict,
    Invalid,
    NotFound,
    State,
    check_appeal_in_time,
    check_director_may_decide,
    require,
)
from sidecar.register.staff import holds, name_of
from sidecar.register.status import status_changed

HANDLER_ROLE = "senior_manager"
"""Appeals are handled by a Senior Manager (Eastleigh 30)."""


def pending_appeal(session: Session, flag: Flag) -> Appeal | None:
    return session.scalars(
        select(Appeal).where(Appeal.flag_id == flag.id, Appeal.outcome.is_(None))
    ).first()


def _default_handler(session: Session, flag: Flag) -> str:
    """The panel's Senior Manager handles the appeal (Eastleigh 30), else the responsible one."""
    member = session.scalar(
        select(PanelDecision.decided_by).where(
            PanelDecision.flag_id == flag.id, PanelDecision.role == "senior_manager"
        )
    )
    return member or flag.responsible_manager


def lodge(
    ctx: ServiceContext,
    flag_id: str,
    *,
    received_on: date | None = None,
    grounds: str | None = None,
    handling_manager: str | None = None,
    handling_manager_name: str | None = None,
) -> Appeal:
    """Record an appeal received in writing; refused once the window has closed."""
    session = ctx.session
    now = ctx.now()
    received = received_on or now.date()
    if received > now.date():
        raise Invalid(f"received_on {received} is in the future")
    flag = flag_service.load(session, flag_id, for_update=True)
    require(flag.state, Action.APPEAL)
    if pending_appeal(session, flag) is not None:
        raise Conflict("an appeal against this flag is already pending")
    check_appeal_in_time(
        notices.notice_day(session, flag), received, ctx.settings.policy.appeal_window_days
    )
    handler = (handling_manager or "").strip() or _default_handler(session, flag)
    appeal = Appeal(
        flag_id=flag.id,
        received_on=received,
        lodged_by=ctx.actor.id,
        lodged_at=now,
        handling_manager=handler,
        handling_manager_name=(handling_manager_name or "").strip()
        or name_of(session, handler)
        or handler,
    )
    appeal.seal(ctx.keyring, "grounds", (grounds or "").strip() or None)
    session.add(appeal)
    session.flush()
    history.record(
        ctx,
        flag,
        "appeal_lodged",
        f"appeal received {received}; handled by {appeal.handling_manager_name}",
        from_state=flag.state,
        facts={"appeal_id": appeal.id, "handling_manager": handler},
        at=now,
    )
    status_changed(session, flag.subject)
    return appeal


def _pending_of(session: Session, flag: Flag, appeal_id: str) -> Appeal:
    appeal = session.get(Appeal, appeal_id)
    if appeal is None or appeal.flag_id != flag.id:
        raise NotFound(f"flag {flag.id} has no appeal {appeal_id}")
    if appeal.outcome is not None:
        raise Conflict(f"this appeal was already decided ({appeal.outcome})")
    return appeal


def assign_handler(ctx: ServiceContext, flag_id: str, appeal_id: str, manager: str) -> Appeal:
    """Name the Senior Manager who handles a pending appeal (the banner shows them)."""
    session = ctx.session
    now = ctx.now()
    flag = flag_service.load(session, flag_id, for_update=True)
    appeal = _pending_of(session, flag, appeal_id)
    manager = manager.strip()
    held = holds(session, manager, HANDLER_ROLE) if manager else None
    if not held:
        raise Invalid(
            f"manager: {manager!r} is not "
            + ("a senior_manager" if held is False else "known as a senior_manager")
            + " (they must have signed in to Forewarn with that role)"
        )
    appeal.handling_manager = manager
    appeal.handling_manager_name = name_of(session, manager) or manager
    history.record(
        ctx,
        flag,
        "appeal_assigned",
        f"appeal received {appeal.received_on} handled by {appeal.handling_manager_name}",
        from_state=flag.state,
        facts={"appeal_id": appeal.id, "handling_manager": manager},
        at=now,
    )
    status_changed(session, flag.subject)
    return appeal


def decide(
    ctx: ServiceContext,
    flag_id: str,
    appeal_id: str,
    outcome: str,
    reasons: str,
    change: flag_service.TermsChange | None = None,
) -> tuple[Appeal, Letter]:
    """The Service Director's decision; refused to anyone with prior involvement in the case."""
    session, actor = ctx.session, ctx.actor
    now = ctx.now()
    flag = flag_service.load(session, flag_id, for_update=True)
    appeal = _pending_of(session, flag, appeal_id)
    require(flag.state, Action.APPEAL_DECISION)
    check_director_may_decide(actor.id, involvement(session, flag))
    if outcome not in APPEAL_OUTCOMES:
        raise Invalid(f"outcome must be one of {', '.join(APPEAL_OUTCOMES)}, not {outcome!r}")
    if not reasons.strip():
        raise Invalid("give the reasons for the decision (reasons)")
    facts: dict[str, object] = {"appeal_id": appeal.id, "outcome": outcome}
    before = flag.state
    if outcome == "varied" and change is not None and change.changed:
        facts["variation"] = flag_service.vary(ctx.settings, flag, change, now.date())
    appeal.outcome = outcome
    appeal.decided_by = actor.id
    appeal.decided_at = now
    appeal.seal(ctx.keyring, "reasons", reasons.strip())
    if outcome == "removed":
        flag_service.end(session, flag, State.REMOVED, now)
    else:
        status_changed(session, flag.subject)
    letter = notices.write_letter(
        ctx,
        flag,
        "appeal_outcome",
        actor.id,
        signatory_title="Service Director",
        extra={"outcome": outcome, "reasons": reasons.strip()},
        now=now,
    )
    history.record(
        ctx,
        flag,
        "appeal_decided",
        f"appeal {outcome} by Service Director {actor.name or actor.id}; outcome letter {letter.n}",
        from_state=before,
        facts=facts | {"letter": letter.n},
        at=now,
    )
    return appeal, letter


def appeals_of(session: Session, flag: Flag) -> list[Appeal]:
    return list(
        session.scalars(select(Appeal).where(Appeal.flag_id == flag.id).order_by(Appeal.lodged_at))
    )


def handling_name(session: Session, appeal: Appeal) -> str:
    return appeal.handling_manager_name or name_of(session, appeal.handling_manager) or ""
