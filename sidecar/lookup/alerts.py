"""Privacy alerts: patterns of access to details that an auditor should look at."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from sidecar.audit import writer as audit
from sidecar.audit.models import AuditEntry
from sidecar.lookup.models import AccessGrant, PrivacyAlert
from sidecar.notify import events as notifications
from sidecar.register.context import ServiceContext
from sidecar.register.history import audit_actor
from sidecar.register.models import Flag
from sidecar.register.rules import Conflict, Invalid, NotFound
from sidecar.settings import Settings

KINDS = ("grant_volume", "reason_other", "outside_team", "refused_sign_ins")
CLOSE_NOTE_MAX = 2000


def _start_of_day(settings: Settings, now: datetime) -> datetime:
    zone = ZoneInfo(settings.lookup.timezone)
    return datetime.combine(now.astimezone(zone).date(), time.min, tzinfo=zone)


def after_grant(
    session: Session, settings: Settings, grant: AccessGrant, now: datetime
) -> list[PrivacyAlert]:
    """Alerts a new grant raises, added to the grant's own transaction."""
    alerts = []
    subject = {"subject_kind": grant.subject_kind, "subject_ref": grant.subject_ref}
    if grant.reason_code == "other":
        alerts.append(
            PrivacyAlert(
                kind="reason_other",
                user_id=grant.user_id,
                detail=f"grant {grant.id} gives reason 'other': {grant.reason_text}"[:512],
                **subject,
            )
        )
    since = _start_of_day(settings, now)
    made_today = session.scalar(
        select(func.count())
        .select_from(AccessGrant)
        .where(AccessGrant.user_id == grant.user_id, AccessGrant.created_at >= since)
    )
    limit = settings.lookup.alert_grants_per_day
    if made_today > limit:
        # One alert per user and day: the auditor needs the pattern, not one row per grant.
        already = session.scalar(
            select(func.count())
            .select_from(PrivacyAlert)
            .where(
                PrivacyAlert.user_id == grant.user_id,
                PrivacyAlert.kind == "grant_volume",
                PrivacyAlert.raised_at >= since,
            )
        )
        if not already:
            alerts.append(
                PrivacyAlert(
                    kind="grant_volume",
                    user_id=grant.user_id,
                    detail=f"{made_today} access grants today, more than the {limit} expected",
                    **subject,
                )
            )
    session.add_all(alerts)
    notifications.alerts_raised(session, settings, alerts)
    return alerts


def teams_of(settings: Settings, user_id: str) -> set[str]:
    return {team for team, members in settings.lookup.teams.items() if user_id in members}


def outside_team(settings: Settings, user_id: str, flag: Flag) -> PrivacyAlert | None:
    """An alert when teams are configured and the flag's manager is in none of the user's."""
    if not settings.lookup.teams:
        return None
    if teams_of(settings, user_id) & teams_of(settings, flag.responsible_manager):
        return None
    return PrivacyAlert(
        kind="outside_team",
        user_id=user_id,
        subject_kind=flag.subject.kind,
        subject_ref=flag.subject.ref,
        flag_id=flag.id,
        detail=(
            f"read details of a flag managed by {flag.responsible_manager}, "
            "who is in none of the reader's teams"
        ),
    )


def after_refused_sign_in(
    session: Session, settings: Settings, account: str, now: datetime
) -> PrivacyAlert | None:
    """An alert when one account's refused sign-ins pass the limit within the window.

    Counted from the audit trail, in the transaction that records the latest refusal, so
    every way in counts alike. One alert per account and window: the pattern, not each try.
    """
    lookup = settings.lookup
    since = now - timedelta(minutes=lookup.alert_refused_sign_ins_minutes)
    refused = session.scalar(
        select(func.count())
        .select_from(AuditEntry)
        .where(
            AuditEntry.actor_id == account,
            AuditEntry.action == "sign_in",
            AuditEntry.outcome == "denied",
            AuditEntry.at >= since,
        )
    )
    if refused <= lookup.alert_refused_sign_ins:
        return None
    already = session.scalar(
        select(func.count())
        .select_from(PrivacyAlert)
        .where(
            PrivacyAlert.user_id == account,
            PrivacyAlert.kind == "refused_sign_ins",
            PrivacyAlert.raised_at >= since,
        )
    )
    if already:
        return None
    alert = PrivacyAlert(
        kind="refused_sign_ins",
        user_id=account,
        detail=(
            f"{refused} refused sign-ins in {lookup.alert_refused_sign_ins_minutes} minutes, "
            f"more than the {lookup.alert_refused_sign_ins} expected"
        ),
    )
    session.add(alert)
    notifications.alerts_raised(session, settings, [alert])
    return alert


def open_alerts() -> Select[tuple[PrivacyAlert]]:
    """Alerts no privacy officer has closed yet, the longest open first."""
    return (
        select(PrivacyAlert)
        .where(PrivacyAlert.closed_at.is_(None))
        .order_by(PrivacyAlert.raised_at, PrivacyAlert.id)
    )


def close(ctx: ServiceContext, alert_id: str, note: str) -> PrivacyAlert:
    """Close an alert with what the privacy officer found or did; audited with the decision."""
    note = note.strip()
    if not note:
        raise Invalid("note: say what you found or did before closing the alert")
    if len(note) > CLOSE_NOTE_MAX:
        raise Invalid(f"note: keep it to {CLOSE_NOTE_MAX} characters")
    alert = ctx.session.get(PrivacyAlert, alert_id, with_for_update=True)
    if alert is None:
        raise NotFound(f"no privacy alert {alert_id}")
    if alert.closed_at is not None:
        raise Conflict(f"privacy alert {alert_id} was closed already by {alert.closed_by}")
    alert.closed_at, alert.closed_by, alert.close_note = ctx.now(), ctx.actor.id, note
    audit.append(
        ctx.session,
        audit.AuditEvent(
            action="alerts.close",
            subject_kind=alert.subject_kind,
            subject_ref=alert.subject_ref,
            flag_id=alert.flag_id,
            outcome_reason=f"alert {alert.id} ({alert.kind}) about {alert.user_id} closed",
            **audit_actor(ctx.actor),
        ),
    )
    return alert
