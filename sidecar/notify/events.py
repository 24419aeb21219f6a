"""What staff are told of: each trigger writes outbox rows in its event's own transaction.

The triggers are called from the services that record the events (details opened, a privacy
alert, a proposal, an appeal lodged or assigned); `scan_due` finds the time-based ones
(reviews coming due, appeal windows closing) and is safe to run any number of times: each
review date and each window is told to each person once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from sidecar.lookup.models import PrivacyAlert
from sidecar.notify.models import Notification
from sidecar.policy.access import decide_with
from sidecar.policy.involvement import prior_involvement
from sidecar.register.case_models import Appeal, Notice, StaffMember
from sidecar.register.models import Flag
from sidecar.register.rules import State, appeal_deadline
from sidecar.register.staff import Actor
from sidecar.settings import Settings
from sidecar.storage.database import new_id, utcnow

CSM = "customer_support_manager"


def _staff_holding(session: Session, role: str) -> list[str]:
    """Who the staff directory last saw holding `role`."""
    return sorted(m.id for m in session.scalars(select(StaffMember)) if role in m.roles)


def _staff_permitted(session: Session, settings: Settings, permission: str) -> list[str]:
    """Who the staff directory last saw in a role holding `permission`."""
    return sorted(
        m.id
        for m in session.scalars(select(StaffMember))
        if decide_with(settings, _Seen(m.id, m.name, tuple(m.roles)), permission).allowed
    )


@dataclass(frozen=True)
class _Seen:
    id: str
    name: str
    roles: tuple[str, ...]


def _row(
    kind: str, recipient: str, link: str, facts: dict[str, Any], now: datetime
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "kind": kind,
        "recipient": recipient,
        "link": link,
        "facts": facts,
        "created_at": now,
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "message_key": None,
        "dedupe_key": None,
    }


def _add(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert rows, skipping any whose dedupe_key is taken; return how many were added.

    INSERT ... ON CONFLICT DO NOTHING, so two scans at once still tell each event once.
    """
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Notification).values(list(rows))
    statement = statement.on_conflict_do_nothing(index_elements=[Notification.dedupe_key])
    added = session.scalars(statement.returning(Notification.id)).all()
    return len(added)


def digest_due(settings: Settings, recipient: str, now: datetime) -> datetime | None:
    """When the recipient's digest that `now` falls in is sent; None: at once."""
    config = settings.notifications
    mode = config.digest_by_recipient.get(recipient, config.details_digest)
    if mode == "immediately":
        return None
    if mode == "hourly":
        return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    zone = ZoneInfo(settings.lookup.timezone)
    local = now.astimezone(zone)
    send = datetime.combine(local.date(), time(config.daily_digest_hour), tzinfo=zone)
    if send <= local:
        send = datetime.combine(local.date() + timedelta(days=1), send.timetz())
    return send.astimezone(UTC)


def details_opened(
    session: Session, settings: Settings, flag: Flag, reader: Actor, reason_code: str
) -> None:
    """Tell the flag's responsible manager who opened its details, when and why.

    The why is the reason code's label (or "a part in the case"), never the reason's text.
    """
    if not settings.notifications.enabled or reader.id == flag.responsible_manager:
        return
    now = utcnow()
    reason = (
        settings.label("reason_codes", reason_code)
        if reason_code in settings.catalogue.reason_codes
        else "their part in the case"
    )
    facts = {
        "flag_ref": flag.reference or flag.id,
        "reader": reader.name or reader.id,
        "at": now.isoformat(),
        "reason": reason,
    }
    subject = flag.subject
    row = _row(
        "details_opened",
        flag.responsible_manager,
        f"/console/subjects/{subject.kind}/{subject.ref}",
        facts,
        now,
    )
    due = digest_due(settings, flag.responsible_manager, now)
    if due is not None:
        row["next_attempt_at"] = due
        row["message_key"] = f"details_opened:{flag.responsible_manager}:{due.isoformat()}"
    _add(session, [row])


def alerts_raised(session: Session, settings: Settings, alerts: Iterable[PrivacyAlert]) -> None:
    """Tell everyone who reads privacy alerts (alerts.read) of each new one, by its kind only:
    an alert's detail may quote a grant's reason, so it stays behind the console link."""
    alerts = list(alerts)
    if not settings.notifications.enabled or not alerts:
        return
    session.flush()
    now = utcnow()
    readers = _staff_permitted(session, settings, "alerts.read")
    _add(
        session,
        [
            _row(
                "privacy_alert",
                reader,
                f"/console/privacy-alerts/{alert.id}",
                {"alert_kind": alert.kind, "at": (alert.raised_at or now).isoformat()},
                now,
            )
            | {"dedupe_key": f"privacy_alert:{alert.id}:{reader}"}
            for alert in alerts
            for reader in readers
        ],
    )


def proposed(session: Session, settings: Settings, flag: Flag) -> None:
    """Tell each panel member (the directory's holders of each panel role) of a proposal
    awaiting their decision; the proposer is not told of their own."""
    if not settings.notifications.enabled:
        return
    now = utcnow()
    rows = [
        _row(
            "awaiting_vote",
            member,
            f"/console/flags/{flag.id}/panel",
            {
                "flag_ref": flag.reference or flag.id,
                "at": now.isoformat(),
                "role": settings.access.role_name(role),
            },
            now,
        )
        | {"dedupe_key": f"awaiting_vote:{flag.id}:{member}"}
        for role in settings.panel.roles
        for member in _staff_holding(session, role)
        if member != flag.proposed_by
    ]
    _add(session, rows)


def appeal_assigned(session: Session, settings: Settings, flag: Flag, appeal: Appeal) -> None:
    """Tell whoever an appeal was assigned to (in `appeals.handler_role`) that they handle it."""
    if not settings.notifications.enabled or not appeal.handling_manager:
        return
    now = utcnow()
    row = _row(
        "appeal_assigned",
        appeal.handling_manager,
        "/console/appeals",
        {"flag_ref": flag.reference or flag.id, "received": appeal.received_on.isoformat()},
        now,
    )
    row["dedupe_key"] = f"appeal_assigned:{appeal.id}:{appeal.handling_manager}"
    _add(session, [row])


def appeal_to_decide(session: Session, settings: Settings, flag: Flag, appeal: Appeal) -> None:
    """Tell each member of staff who may decide a newly lodged appeal that it awaits them.

    Everyone the directory last saw in one of `appeals.decider_roles` is told, except where
    that role must be uninvolved (`appeals.uninvolved_roles`, the Service Director by default)
    and they had a part in the case: they could not decide it, and the console shows them why
    not instead of the decision form. The appeal's lodger counts as a part, as when deciding.
    """
    if not settings.notifications.enabled:
        return
    session.flush()
    involved = prior_involvement(session, flag)
    uninvolved = settings.appeals.uninvolved_roles
    roles: dict[str, str] = {}
    for role in settings.appeals.decider_roles:
        for member in _staff_holding(session, role):
            if role in uninvolved and member in involved:
                continue
            roles.setdefault(member, role)
    now = utcnow()
    facts = {"flag_ref": flag.reference or flag.id, "received": appeal.received_on.isoformat()}
    rows = [
        _row(
            "appeal_to_decide",
            member,
            "/console/appeals",
            facts | {"role": settings.access.role_name(role), "uninvolved": role in uninvolved},
            now,
        )
        | {"dedupe_key": f"appeal_to_decide:{appeal.id}:{member}"}
        for member, role in sorted(roles.items())
    ]
    _add(session, rows)


@dataclass
class ScanReport:
    """What one scan for time-based notifications added."""

    reviews: int = 0
    windows: int = 0


def scan_due(session: Session, settings: Settings, today: date) -> ScanReport:
    """Tell the Customer Support Managers of reviews coming due within the lead time and of
    appeal windows closing within theirs; each review date and window once per person."""
    report = ScanReport()
    config = settings.notifications
    if not config.enabled:
        return report
    managers = _staff_holding(session, CSM)
    now = utcnow()
    horizon = today + timedelta(days=config.review_due_lead_days)
    due = session.scalars(
        select(Flag).where(Flag.state == State.ACTIVE.value, Flag.review_due <= horizon)
    ).all()
    report.reviews = _add(
        session,
        [
            _row(
                "review_due",
                manager,
                "/console/reviews",
                {"flag_ref": flag.reference or flag.id, "due": flag.review_due.isoformat()},
                now,
            )
            | {"dedupe_key": f"review_due:{flag.id}:{flag.review_due.isoformat()}:{manager}"}
            for flag in due
            for manager in managers
        ],
    )
    window = settings.policy.appeal_window_days
    earliest = datetime.combine(today - timedelta(days=window), time.min, tzinfo=UTC)
    appealed = exists().where(Appeal.flag_id == Flag.id, Appeal.outcome.is_(None))
    told = session.execute(
        select(Flag, Notice.issued_at)
        .join(Notice, Notice.flag_id == Flag.id)
        .where(Flag.state == State.ACTIVE.value, Notice.issued_at >= earliest, ~appealed)
    ).all()
    rows = []
    for flag, issued_at in told:
        closes = appeal_deadline(issued_at.date(), window)
        if not today <= closes <= today + timedelta(days=config.appeal_window_lead_days):
            continue
        for manager in managers:
            row = _row(
                "appeal_window",
                manager,
                "/console/appeals/windows",
                {"flag_ref": flag.reference or flag.id, "closes": closes.isoformat()},
                now,
            )
            rows.append(row | {"dedupe_key": f"appeal_window:{flag.id}:{closes}:{manager}"})
    report.windows = _add(session, rows)
    return report
