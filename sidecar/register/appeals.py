"""Appeals: lodged within the window, handled by a Senior Manager, decided by an uninvolved
Service Director, each outcome told to the person in a letter."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from sidecar.notify import events as notifications
from sidecar.policy.access import decide_with
from sidecar.policy.involvement import prior_involvement
from sidecar.register import flags as flag_service
from sidecar.register import history, notices
from sidecar.register.case_models import Appeal, Letter, PanelDecision
from sidecar.register.context import ServiceContext
from sidecar.register.models import Flag
from sidecar.register.rules import (
    APPEAL_OUTCOMES,
    Action,
    Conflict,
    Forbidden,
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


SENIOR_MANAGER = "senior_manager"
ASSIGN_PERMISSION = "appeal.assign"


def _panel_senior_manager(session: Session, flag: Flag, lodger: str) -> str | None:
    """The panel's Senior Manager handles the appeal by default (Eastleigh 30).

    Only someone the staff directory knows as a Senior Manager, and never the lodger; with
    no such panel member (an imported flag) the appeal waits for the Customer Support
    Manager to assign one.
    """
    member = session.scalar(
        select(PanelDecision.decided_by).where(
            PanelDecision.flag_id == flag.id, PanelDecision.role == SENIOR_MANAGER
        )
    )
    if member is None or member == lodger or not holds(session, member, SENIOR_MANAGER):
        return None
    return member


def _check_handler(ctx: ServiceContext, user_id: str, lodger: str) -> str:
    """The named handler is a Senior Manager in the directory, not the lodger nor the assigner."""
    user_id = user_id.strip()
    if user_id == ctx.actor.id:
        raise Forbidden(
            "handling_manager: the handling Senior Manager cannot be you; assign someone "
            "who takes no other part in the appeal"
        )
    if user_id == lodger:
        raise Invalid(f"handling_manager: {user_id!r} lodged the appeal and cannot handle it")
    held = holds(ctx.session, user_id, SENIOR_MANAGER)
    if held is None:
        raise Invalid(
            f"handling_manager: {user_id!r} is not in the staff directory (they must have "
            "signed in to Forewarn as a senior_manager)"
        )
    if not held:
        raise Invalid(f"handling_manager: {user_id!r} is not a Senior Manager")
    return user_id


def _check_may_assign(ctx: ServiceContext) -> None:
    if not decide_with(ctx.settings, ctx.actor, ASSIGN_PERMISSION).allowed:
        raise Forbidden(
            f"naming the handling Senior Manager needs {ASSIGN_PERMISSION} (the Customer "
            "Support Manager assigns it); lodge the appeal without handling_manager"
        )


def lodge(
    ctx: ServiceContext,
    flag_id: str,
    *,
    received_on: date | None = None,
    grounds: str | None = None,
    handling_manager: str | None = None,
) -> Appeal:
    """Record an appeal received in writing; refused once the window has closed.

    Only a holder of appeal.assign may name the handling Senior Manager; otherwise the
    panel's Senior Manager handles it, or nobody until one is assigned.
    """
    session, lodger = ctx.session, ctx.actor.id
    now = ctx.now()
    received = received_on or now.date()
    if received > now.date():
        raise Invalid(f"received_on {received} is in the future")
    if handling_manager is not None:
        _check_may_assign(ctx)
    flag = flag_service.load(session, flag_id, for_update=True)
    require(flag.state, Action.APPEAL)
    if pending_appeal(session, flag) is not None:
        raise Conflict("an appeal against this flag is already pending")
    check_appeal_in_time(
        notices.notice_day(session, flag), received, ctx.settings.policy.appeal_window_days
    )
    if handling_manager is not None:
        handler: str | None = _check_handler(ctx, handling_manager, lodger)
        assigned_by = lodger
    else:
        handler = _panel_senior_manager(session, flag, lodger)
        assigned_by = "panel" if handler else None
    appeal = Appeal(
        flag_id=flag.id,
        received_on=received,
        lodged_by=lodger,
        lodged_at=now,
        handling_manager=handler,
        handling_manager_name=name_of(session, handler) or "",
    )
    appeal.seal(ctx.keyring, "grounds", (grounds or "").strip() or None)
    session.add(appeal)
    session.flush()
    history.record(
        ctx,
        flag,
        "appeal_lodged",
        f"appeal received {received}; "
        + (
            f"handled by {appeal.handling_manager_name}"
            if handler
            else "awaiting a handling Senior Manager"
        ),
        from_state=flag.state,
        facts={"appeal_id": appeal.id, "handling_manager": handler, "assigned_by": assigned_by},
        at=now,
    )
    status_changed(session, flag.subject)
    notifications.appeal_assigned(session, ctx.settings, flag, appeal)
    return appeal


def assign_handler(
    ctx: ServiceContext, flag_id: str, appeal_id: str, handling_manager: str
) -> Appeal:
    """The Customer Support Manager names (or changes) the Senior Manager handling an appeal."""
    session = ctx.session
    now = ctx.now()
    flag = flag_service.load(session, flag_id, for_update=True)
    appeal = _appeal_of(session, flag, appeal_id)
    if appeal.outcome is not None:
        raise Conflict(f"this appeal was already decided ({appeal.outcome})")
    handler = _check_handler(ctx, handling_manager, appeal.lodged_by)
    previous = appeal.handling_manager
    appeal.handling_manager = handler
    appeal.handling_manager_name = name_of(session, handler) or ""
    history.record(
        ctx,
        flag,
        "appeal_assigned",
        f"appeal handled by {appeal.handling_manager_name}, assigned by "
        f"{ctx.actor.name or ctx.actor.id}",
        from_state=flag.state,
        facts={"appeal_id": appeal.id, "handling_manager": handler, "previous": previous},
        at=now,
    )
    status_changed(session, flag.subject)
    notifications.appeal_assigned(session, ctx.settings, flag, appeal)
    return appeal


def _appeal_of(session: Session, flag: Flag, appeal_id: str) -> Appeal:
    appeal = session.get(Appeal, appeal_id)
    if appeal is None or appeal.flag_id != flag.id:
        raise NotFound(f"flag {flag.id} has no appeal {appeal_id}")
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
    appeal = _appeal_of(session, flag, appeal_id)
    if appeal.outcome is not None:
        raise Conflict(f"this appeal was already decided ({appeal.outcome})")
    require(flag.state, Action.APPEAL_DECISION)
    check_director_may_decide(actor.id, prior_involvement(session, flag))
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


def handling_name(session: Session, appeal: Appeal) -> str | None:
    """The handling Senior Manager's name; None while nobody is assigned."""
    if not appeal.handling_manager:
        return None
    return appeal.handling_manager_name or name_of(session, appeal.handling_manager)
