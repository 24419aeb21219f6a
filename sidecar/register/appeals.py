"""Appeals: lodged within the window, handled by a Senior Manager, decided by an uninvolved
Service Director, each outcome told to the person in a letter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session, joinedload

from sidecar.notify import events as notifications
from sidecar.policy.access import decide_with
from sidecar.policy.involvement import prior_involvement
from sidecar.register import flags as flag_service
from sidecar.register import history, notices
from sidecar.register.case_models import Appeal, AppealDecision, Letter, Notice
from sidecar.register.context import ServiceContext
from sidecar.register.models import Flag
from sidecar.register.rules import (
    APPEAL_OUTCOMES,
    Action,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    Seats,
    State,
    appeal_deadline,
    check_appeal_in_time,
    check_director_may_decide,
    require,
)
from sidecar.register.staff import holds, name_of
from sidecar.register.status import status_changed
from sidecar.settings import Settings


def pending_appeal(session: Session, flag: Flag) -> Appeal | None:
    return session.scalars(
        select(Appeal).where(Appeal.flag_id == flag.id, Appeal.outcome.is_(None))
    ).first()


ASSIGN_PERMISSION = "appeal.assign"


def _panel_handler(ctx: ServiceContext, flag: Flag, lodger: str) -> str | None:
    """The panel member in the handler role handles the appeal by default (Eastleigh 30: the
    Senior Manager), never the lodger; with none (an imported flag) the appeal waits for the
    Customer Support Manager to assign one."""
    member = notices.panel_handler(ctx.session, ctx.settings, flag)
    return None if member == lodger else member


def handler_title(settings: Settings) -> str:
    """How staff read the appeal handler role (appeals.handler_role): "Service Senior Manager"."""
    return settings.access.role_name(settings.appeals.handler_role)


def _check_handler(ctx: ServiceContext, user_id: str, lodger: str) -> str:
    """The named handler holds the handler role in the directory, not the lodger nor the
    assigner."""
    role = ctx.settings.appeals.handler_role
    user_id = user_id.strip()
    if user_id == ctx.actor.id:
        raise Forbidden(
            f"handling_manager: the handling {handler_title(ctx.settings)} cannot be you; "
            "assign someone who takes no other part in the appeal"
        )
    if user_id == lodger:
        raise Invalid(f"handling_manager: {user_id!r} lodged the appeal and cannot handle it")
    held = holds(ctx.session, user_id, role)
    if held is None:
        raise Invalid(
            f"handling_manager: {user_id!r} is not in the staff directory (they must have "
            f"signed in to Forewarn as a {role})"
        )
    if not held:
        title = handler_title(ctx.settings)
        raise Invalid(f"handling_manager: {user_id!r} is not a {title} ({role})")
    return user_id


def _check_may_assign(ctx: ServiceContext) -> None:
    if not decide_with(ctx.settings, ctx.actor, ASSIGN_PERMISSION).allowed:
        raise Forbidden(
            f"naming the handling {handler_title(ctx.settings)} needs {ASSIGN_PERMISSION} (the "
            "Customer Support Manager assigns it); lodge the appeal without handling_manager"
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
        handler = _panel_handler(ctx, flag, lodger)
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
            else f"awaiting a handling {handler_title(ctx.settings)}"
        ),
        from_state=flag.state,
        facts={"appeal_id": appeal.id, "handling_manager": handler, "assigned_by": assigned_by},
        at=now,
    )
    status_changed(session, flag.subject)
    notifications.appeal_assigned(session, ctx.settings, flag, appeal)
    notifications.appeal_to_decide(session, ctx.settings, flag, appeal)
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


def _deciding_role(ctx: ServiceContext, role: str | None) -> str:
    """The appeal-deciding role the caller decides in: the one named, else the only one held."""
    settings = ctx.settings.appeals
    if role is not None:
        if role not in settings.decider_roles:
            raise Invalid(
                f"role: {role!r} does not decide appeals; deciding roles: "
                f"{', '.join(settings.decider_roles)}"
            )
        if role not in ctx.actor.roles:
            raise Forbidden(f"you do not hold the role {role} you are deciding in")
        return role
    held = [r for r in settings.decider_roles if r in ctx.actor.roles]
    if not held:
        raise Forbidden(
            "you hold none of the roles that decide appeals: "
            + ", ".join(ctx.settings.access.role_name(r) for r in settings.decider_roles)
        )
    if len(held) > 1:
        raise Invalid(f"role: you hold {' and '.join(held)}; say which you decide in")
    return held[0]


def decisions_of(session: Session, appeal: Appeal) -> list[AppealDecision]:
    return list(
        session.scalars(
            select(AppealDecision)
            .where(AppealDecision.appeal_id == appeal.id)
            .order_by(AppealDecision.decided_at, AppealDecision.id)
        )
    )


def deciders(settings: Settings) -> Seats:
    """The settings' appeal deciders as seats: who sits, how many must agree, who must."""
    appeals = settings.appeals
    return Seats(
        tuple(appeals.decider_roles),
        appeals.deciders_needed,
        tuple(appeals.required_roles),
        name="appeal",
    )


def awaiting(settings: Settings, earlier: list[AppealDecision]) -> list[str]:
    decided = {d.role for d in earlier}
    return [role for role in settings.appeals.decider_roles if role not in decided]


def decide(
    ctx: ServiceContext,
    flag_id: str,
    appeal_id: str,
    outcome: str,
    reasons: str,
    change: flag_service.TermsChange | None = None,
    role: str | None = None,
) -> tuple[Appeal, Letter | None]:
    """One decider's decision; the appeal is decided once the deciders the settings name
    agree (by default one Service Director). A decider in a role that must be uninvolved is
    refused if they had any prior part in the case. The letter is None while others must
    still agree."""
    session, actor = ctx.session, ctx.actor
    now = ctx.now()
    flag = flag_service.load(session, flag_id, for_update=True)
    appeal = _appeal_of(session, flag, appeal_id)
    if appeal.outcome is not None:
        raise Conflict(f"this appeal was already decided ({appeal.outcome})")
    require(flag.state, Action.APPEAL_DECISION)
    role = _deciding_role(ctx, role)
    title = ctx.settings.access.role_name(role)
    if role in ctx.settings.appeals.uninvolved_roles:
        check_director_may_decide(actor.id, prior_involvement(session, flag), title)
    if outcome not in APPEAL_OUTCOMES:
        raise Invalid(f"outcome must be one of {', '.join(APPEAL_OUTCOMES)}, not {outcome!r}")
    if not reasons.strip():
        raise Invalid("give the reasons for the decision (reasons)")
    earlier = decisions_of(session, appeal)
    for other in earlier:
        if other.decided_by == actor.id:
            raise Conflict(f"you already decided on this appeal as {other.role}")
        if other.role == role:
            raise Conflict(f"the {title} has already decided on this appeal")
    vote = AppealDecision(
        flag_id=flag.id,
        appeal_id=appeal.id,
        role=role,
        outcome=outcome,
        decided_by=actor.id,
        decided_by_name=actor.name,
        decided_at=now,
    )
    vote.seal(ctx.keyring, "reasons", reasons.strip())
    session.add(vote)
    session.flush()
    votes = [*earlier, vote]
    seats = deciders(ctx.settings)
    agreed = {v.role: v.decided_by for v in votes if v.outcome == outcome}
    if not seats.reached(agreed):
        waiting = awaiting(ctx.settings, votes)
        history.record(
            ctx,
            flag,
            "appeal_decision_recorded",
            f"{title} {actor.name or actor.id} decided the appeal should be {outcome}; "
            f"awaiting {', '.join(ctx.settings.access.role_name(r) for r in waiting)}",
            from_state=flag.state,
            facts={"appeal_id": appeal.id, "role": role, "outcome": outcome},
            at=now,
        )
        return appeal, None
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
        signatory_title=title,
        extra={"outcome": outcome, "reasons": reasons.strip()},
        now=now,
    )
    names = {v.role: v.decided_by_name or v.decided_by for v in votes if v.outcome == outcome}
    by = " and ".join(
        f"{ctx.settings.access.role_name(r)} {names[r]}" for r in seats.roles if r in names
    )
    history.record(
        ctx,
        flag,
        "appeal_decided",
        f"appeal {outcome} by {by}; outcome letter {letter.n}",
        from_state=before,
        facts=facts
        | {"letter": letter.n}
        | ({"deciders": sorted(agreed)} if seats.needed > 1 else {}),
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


def window_start(today: date, window_days: int) -> datetime:
    """The earliest notice whose appeal window is still open today."""
    return datetime.combine(today - timedelta(days=window_days), time.min, tzinfo=UTC)


def open_windows(since: datetime) -> Select[Any]:
    """Active flags told to the person since `since` (their window is open), no appeal
    pending, the window closing first, first.

    A range on the notices' issued_at index, read in its order: the cost follows the
    windows open, not the size of the register. The state is compared as an expression so
    that no planner reads every active flag through the state index instead (without
    statistics SQLite would: https://sqlite.org/optoverview.html#uplus).
    """
    pending = exists().where(Appeal.flag_id == Flag.id, Appeal.outcome.is_(None))
    return (
        select(Flag, Notice.issued_at, Notice.method)
        .options(joinedload(Flag.subject))
        .join(Notice, Notice.flag_id == Flag.id)
        .where(
            Notice.issued_at >= since,
            Flag.state.concat("") == State.ACTIVE.value,
            ~pending,
        )
        .order_by(Notice.issued_at, Notice.flag_id)
    )


@dataclass(frozen=True)
class OpenWindow:
    """A flag whose appeal window is open: when the person was told, and when it closes."""

    flag: Flag
    method: str
    told_on: date
    closes_on: date


def open_windows_page(
    session: Session, today: date, window_days: int, number: int, size: int
) -> tuple[list[OpenWindow], int]:
    """Page `number` (from 1) of the open appeal windows, and how many there are in all."""
    query = open_windows(window_start(today, window_days))
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = session.execute(query.limit(size).offset((max(1, number) - 1) * size)).unique()
    return [
        OpenWindow(flag, method, issued.date(), appeal_deadline(issued.date(), window_days))
        for flag, issued, method in rows
    ], total or 0
