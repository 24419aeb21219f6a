"""A flag's history: each state change or decision appended, with its audit entry, atomically."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sidecar.audit import writer as audit
from sidecar.register.case_models import FlagEvent
from sidecar.register.context import ServiceContext
from sidecar.register.models import Flag
from sidecar.register.staff import Actor, remember


def audit_actor(actor: Actor) -> dict[str, str | None]:
    """The actor's fields for an audit entry (the request fills in address and agent)."""
    return {
        "actor_id": actor.id,
        "actor_name": actor.name,
        "actor_roles": ",".join(actor.roles),
        "via": getattr(actor, "via", None),
    }


def record(
    ctx: ServiceContext,
    flag: Flag,
    action: str,
    why: str,
    *,
    from_state: str | None,
    facts: dict[str, Any] | None = None,
    at: datetime,
) -> FlagEvent:
    """Append a history record for the flag's current state and the matching audit entry."""
    session, actor = ctx.session, ctx.actor
    remember(session, actor.id, actor.name, actor.roles)
    session.flush()
    seq = (
        session.scalar(select(func.max(FlagEvent.seq)).where(FlagEvent.flag_id == flag.id)) or 0
    ) + 1
    entry = FlagEvent(
        flag_id=flag.id,
        seq=seq,
        at=at,
        actor_id=actor.id,
        actor_name=actor.name,
        action=action,
        from_state=from_state,
        to_state=flag.state,
        why=why,
        facts=facts or {},
    )
    session.add(entry)
    audit.append(
        session,
        audit.AuditEvent(
            action=f"flag.{action}",
            outcome_reason=why[:256],
            subject_kind=flag.subject.kind,
            subject_ref=flag.subject.ref,
            flag_id=flag.id,
            **audit_actor(actor),
        ),
    )
    return entry


def history(session: Session, flag: Flag) -> list[dict[str, Any]]:
    """The flag's history, oldest first."""
    events = session.scalars(
        select(FlagEvent).where(FlagEvent.flag_id == flag.id).order_by(FlagEvent.seq)
    )
    return [
        {
            "seq": e.seq,
            "at": e.at.isoformat(),
            "actor": {"id": e.actor_id, "name": e.actor_name},
            "action": e.action,
            "from_state": e.from_state,
            "to_state": e.to_state,
            "why": e.why,
            "facts": e.facts,
        }
        for e in events
    ]
