"""The committee summary (Workington 7): incidents, flags, decisions, appeals and reviews."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sidecar.register.case_models import Appeal, FlagEvent, Review
from sidecar.register.context import ServiceContext
from sidecar.register.models import Flag, Incident
from sidecar.register.reviews import due, notices_overdue
from sidecar.register.rules import Invalid, State
from sidecar.settings import Settings

DECISIONS = {
    "panel_approve": "panel_approvals",
    "panel_reject": "panel_rejections",
    "notice_letter": "decision_letters_sent",
    "notice_withheld": "letters_withheld_by_exception",
    "withdrawn": "flags_withdrawn",
    "expired": "flags_expired",
    "imported": "flags_imported",
    "purged": "flags_purged",
}
"""History actions counted in the summary, and the key each count is reported under."""


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return (
        datetime.combine(start, time.min, tzinfo=UTC),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC),
    )


def _labelled(counts: Counter[str], settings: Settings, catalogue: str) -> list[dict[str, Any]]:
    return [
        {"code": code, "label": settings.label(catalogue, code), "count": counts[code]}
        for code in getattr(settings.catalogue, catalogue)
        if counts[code]
    ]


DEFAULT_RANGE = timedelta(days=365)
"""Without a start, the summary covers the year up to its last day."""


def summary(ctx: ServiceContext, start: date | None, end: date | None) -> dict[str, Any]:
    """Counts for the date range (inclusive, default the past year); overdue lists as of now."""
    session, settings = ctx.session, ctx.settings
    now = ctx.now()
    end = end or now.date()
    start = start or end - DEFAULT_RANGE
    if start > end:
        raise Invalid(f"from {start} is after to {end}")
    since, until = _bounds(start, end)
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "generated_at": now.isoformat(),
        "council": settings.deployment.council_name,
        "incidents": _incidents(session, settings, since, until),
        "flags_proposed": _flag_counts(
            settings,
            session.scalars(
                select(Flag).where(Flag.proposed_at >= since, Flag.proposed_at < until)
            ).all(),
        ),
        "decisions": _decisions(session, since, until),
        "appeals": _appeals(session, start, end, since, until),
        "reviews": _reviews(session, settings, since, until, now),
        "notices_overdue_now": notices_overdue(session, settings, now),
        "active_now": _flag_counts(
            settings, session.scalars(select(Flag).where(Flag.state == State.ACTIVE.value)).all()
        ),
    }


def _incidents(
    session: Session, settings: Settings, since: datetime, until: datetime
) -> dict[str, Any]:
    incidents = session.scalars(
        select(Incident).where(Incident.occurred_at >= since, Incident.occurred_at < until)
    ).all()
    channels: Counter[str] = Counter(i.channel for i in incidents)
    behaviours: Counter[str] = Counter(b for i in incidents for b in i.behaviour_types)
    triage: Counter[str] = Counter(i.triage or "awaiting_triage" for i in incidents)
    return {
        "total": len(incidents),
        "warning_given": sum(1 for i in incidents if i.warning_given),
        "by_channel": _labelled(channels, settings, "channels"),
        "by_behaviour_type": _labelled(behaviours, settings, "behaviour_types"),
        "by_triage": dict(sorted(triage.items())),
    }


def _flag_counts(settings: Settings, flags: Sequence[Flag]) -> dict[str, Any]:
    return {
        "total": len(flags),
        "by_level": _labelled(Counter(f.level for f in flags), settings, "levels"),
        "by_category": _labelled(
            Counter(c for f in flags for c in f.categories), settings, "categories"
        ),
    }


def _decisions(session: Session, since: datetime, until: datetime) -> dict[str, int]:
    """Decisions read from the flags' history: state changes and the counted actions."""
    events = session.scalars(
        select(FlagEvent).where(FlagEvent.at >= since, FlagEvent.at < until)
    ).all()
    actions: Counter[str] = Counter(e.action for e in events)
    activated = sum(
        1 for e in events if e.to_state == State.ACTIVE.value and e.from_state != e.to_state
    )
    removed = sum(
        1 for e in events if e.to_state == State.REMOVED.value and e.from_state != e.to_state
    )
    return {
        "flags_activated": activated,
        "flags_removed": removed,
        **{key: actions[action] for action, key in DECISIONS.items()},
    }


def _appeals(
    session: Session, start: date, end: date, since: datetime, until: datetime
) -> dict[str, Any]:
    """Appeals received in the range (by date received) and decided in it."""
    lodged = session.scalars(
        select(Appeal).where(Appeal.received_on >= start, Appeal.received_on <= end)
    ).all()
    decided = session.scalars(
        select(Appeal).where(Appeal.decided_at >= since, Appeal.decided_at < until)
    ).all()
    return {
        "lodged": len(lodged),
        "decided": len(decided),
        "by_outcome": dict(sorted(Counter(a.outcome for a in decided).items())),
    }


def _reviews(
    session: Session, settings: Settings, since: datetime, until: datetime, now: datetime
) -> dict[str, Any]:
    reviews = session.scalars(
        select(Review).where(Review.reviewed_at >= since, Review.reviewed_at < until)
    ).all()
    overdue = [f for f in due(session, settings, now.date()) if f["standing"] == "overdue"]
    return {
        "done": len(reviews),
        "by_outcome": dict(sorted(Counter(r.outcome for r in reviews).items())),
        "overdue_now": len(overdue),
        "overdue": overdue,
    }
