"""Privacy alerts: patterns of access to details that an auditor should look at."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sidecar.audit.models import AuditEntry
from sidecar.lookup.models import AccessGrant, PrivacyAlert
from sidecar.register.models import Flag
from sidecar.settings import Settings

KINDS = ("grant_volume", "reason_other", "outside_team", "refused_sign_ins")


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
    return alert
