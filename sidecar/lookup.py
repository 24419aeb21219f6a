"""The lookup service: a subject's banner, access grants for details, and the details themselves."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask_login import current_user
from sqlalchemy import bindparam, exists, literal, or_, select
from sqlalchemy.orm import Session

from sidecar import access
from sidecar.access import DETAILS_READ, Decision, FlagResource, GrantScope
from sidecar.crypto import KeyRing
from sidecar.db import Database, utcnow
from sidecar.errors import Problem
from sidecar.involvement import involvement
from sidecar.lifecycle import State, current_restrictions, highest_level
from sidecar.lifecycle_models import Appeal, FlagIncident, Notice, PanelDecision, Review
from sidecar.lookup_models import AccessGrant
from sidecar.models import Flag, Incident, Subject, SubjectLink
from sidecar.register.staff import name_of
from sidecar.settings import LEVELS, Settings
from sidecar.status import banner_flags, linked_customers, restriction_label
from sidecar.status_cache import StatusCache

SUBJECT_KINDS = ("customer", "property")
REF_MAX_LENGTH = 64


def check_subject(kind: str, ref: str, where: str = "path") -> None:
    """Refuse a subject the register cannot hold, naming the part that is wrong."""
    problem = None
    if kind not in SUBJECT_KINDS:
        problem = ("kind", f"must be one of {', '.join(SUBJECT_KINDS)}")
    elif not ref.strip() or len(ref) > REF_MAX_LENGTH or not ref.isprintable():
        problem = ("ref", f"must be 1 to {REF_MAX_LENGTH} printable characters")
    if problem is not None:
        field, message = problem
        raise Problem(
            422,
            "invalid-request",
            f"{where} field '{field}': {message}",
            errors=[{"field": field, "message": message}],
        )


def find_subject(session: Session, kind: str, ref: str) -> Subject | None:
    return session.scalars(select(Subject).where(Subject.kind == kind, Subject.ref == ref)).first()


def _linked_flag(flag: dict[str, Any]) -> dict[str, Any]:
    """A linked customer's flag as a property's banner shows it: level and categories only."""
    return {
        "id": flag["id"],
        "level": flag["level"],
        "level_label": flag["level_label"],
        "categories": flag["categories"],
        "category_labels": flag["category_labels"],
        "restrictions": [],
        "handling": "",
        "review_due": None,
        "appeal": {"pending": False, "handling_manager": None},
        "linked": {"kind": "customer"},
    }


NO_STATUS: dict[str, Any] = {"status": "none", "flags": []}

_SUBJECTS = Subject.__table__
_FLAGS = Flag.__table__
_LINKS = SubjectLink.__table__
_LINKED_FLAGS = _FLAGS.alias("linked_flags")
# What a banner read asks first, in one statement on unique and covering indexes: the
# subject's id and status version (the cache key), and whether there is anything to show at
# all (an active flag of its own or, for a property, of a linked customer).
_STATUS_KEY = select(
    _SUBJECTS.c.id,
    _SUBJECTS.c.status_version,
    or_(
        exists().where(_FLAGS.c.subject_id == _SUBJECTS.c.id, _FLAGS.c.state == State.ACTIVE.value),
        select(literal(1))
        .select_from(_LINKS.join(_LINKED_FLAGS, _LINKED_FLAGS.c.subject_id == _LINKS.c.customer_id))
        .where(
            _LINKS.c.property_id == _SUBJECTS.c.id,
            _LINKED_FLAGS.c.state == State.ACTIVE.value,
        )
        .exists(),
    ).label("shows"),
).where(_SUBJECTS.c.kind == bindparam("kind"), _SUBJECTS.c.ref == bindparam("ref"))


def banner_status(
    database: Database, cache: StatusCache, settings: Settings, kind: str, ref: str
) -> dict[str, Any]:
    """What every user's banner shows for the subject, from the cache where it is current.

    On a miss the status is read (in one transaction) after the key, so what is cached under
    a version is never older than that version; at worst it is newer, and a reader who sees
    the newer version's key reads again.
    """
    with database.reader.connect() as connection:
        key = connection.execute(_STATUS_KEY, {"kind": kind, "ref": ref}).first()
    if key is None or not key.shows:
        return NO_STATUS

    def load() -> dict[str, Any]:
        with database.transaction() as session:
            return subject_status(session, settings, kind, ref)

    return cache.get((key.id, key.status_version, utcnow().date()), load)


def subject_status(session: Session, settings: Settings, kind: str, ref: str) -> dict[str, Any]:
    """What every user's banner shows for the subject, read from the register.

    An unknown subject has no flags; for a property the flags of linked customers count too,
    so a visit to the address is never planned without the warning.
    """
    subject = find_subject(session, kind, ref)
    if subject is None:
        return NO_STATUS
    flags = banner_flags(session, settings, subject)
    for customer in linked_customers(session, subject):
        flags += [_linked_flag(flag) for flag in banner_flags(session, settings, customer)]
    return {
        "status": highest_level((flag["level"] for flag in flags), LEVELS) or "none",
        "flags": flags,
    }


def grant_expiry(settings: Settings, now: datetime, visit_date: date | None) -> datetime:
    """End of the visit day in the council's time zone, or `policy.grant_hours` from now."""
    if visit_date is None:
        return now + timedelta(hours=settings.policy.grant_hours)
    zone = ZoneInfo(settings.lookup.timezone)
    next_day = datetime.combine(visit_date + timedelta(days=1), time.min, tzinfo=zone)
    return next_day.astimezone(UTC)


def check_visit_date(settings: Settings, now: datetime, visit_date: date | None) -> None:
    if visit_date is None:
        return
    today = now.astimezone(ZoneInfo(settings.lookup.timezone)).date()
    ahead = settings.lookup.visit_days_ahead
    if not today <= visit_date <= today + timedelta(days=ahead):
        message = f"must be between today ({today.isoformat()}) and {ahead} days ahead"
        raise Problem(
            422,
            "invalid-request",
            f"body field 'visit_date': {message}",
            errors=[{"field": "visit_date", "message": message}],
        )


def live_grants(
    session: Session, user_id: str, kind: str, ref: str, now: datetime
) -> list[AccessGrant]:
    """The user's unexpired grants for the subject, newest first."""
    return list(
        session.scalars(
            select(AccessGrant)
            .where(
                AccessGrant.user_id == user_id,
                AccessGrant.subject_kind == kind,
                AccessGrant.subject_ref == ref,
                AccessGrant.expires_at > now,
            )
            .order_by(AccessGrant.created_at.desc())
        )
    )


def flag_resource(
    session: Session, flag: Flag, user_id: str, now: datetime
) -> tuple[FlagResource, list[AccessGrant]]:
    """What the access policy needs to decide on the flag's details for this user."""
    subject = flag.subject
    # A grant states a need to know how to deal with the subject today: it opens the flags
    # the banner shows (active ones), never a rejected proposal or an ended flag.
    grants = (
        live_grants(session, user_id, subject.kind, subject.ref, now)
        if flag.state == State.ACTIVE.value
        else []
    )
    resource = FlagResource(
        flag_id=flag.id,
        subject_kind=subject.kind,
        subject_ref=subject.ref,
        relations={
            user: frozenset(relations) for user, relations in involvement(session, flag).items()
        },
        grants=tuple(
            GrantScope(g.id, g.user_id, g.subject_kind, g.subject_ref, g.expires_at) for g in grants
        ),
    )
    return resource, grants


def may_read_details(session: Session, flag: Flag, now: datetime) -> Decision:
    """The access policy's answer on this flag's confidential fields for the signed-in user.

    The details endpoint, the case record and the letters all ask here, so one rule
    (details.request plus a grant or a relationship) decides every disclosure.
    """
    resource, _ = flag_resource(session, flag, current_user.id, now)
    return access.decide(current_user, DETAILS_READ, resource)


def _incident_summaries(session: Session, settings: Settings, flag: Flag) -> list[dict[str, Any]]:
    incidents = session.scalars(
        select(Incident)
        .join(FlagIncident, FlagIncident.incident_id == Incident.id)
        .where(FlagIncident.flag_id == flag.id)
        .order_by(Incident.occurred_at)
    )
    return [
        {
            "id": incident.id,
            "occurred_on": incident.occurred_at.date().isoformat(),
            "channel": settings.label("channels", incident.channel),
            "behaviour": [settings.label("behaviour_types", b) for b in incident.behaviour_types],
            "warning_given": incident.warning_given,
        }
        for incident in incidents
    ]


def _decision_summary(session: Session, flag: Flag) -> dict[str, Any]:
    panel = session.scalars(
        select(PanelDecision)
        .where(PanelDecision.flag_id == flag.id)
        .order_by(PanelDecision.decided_at)
    )
    notice = session.scalars(select(Notice).where(Notice.flag_id == flag.id)).first()
    appeals = session.scalars(
        select(Appeal).where(Appeal.flag_id == flag.id).order_by(Appeal.lodged_at)
    )
    review = session.scalars(
        select(Review).where(Review.flag_id == flag.id).order_by(Review.reviewed_at.desc())
    ).first()
    return {
        "state": flag.state,
        "activated_on": flag.activated_at.date().isoformat() if flag.activated_at else None,
        "panel": [
            {
                "role": decision.role,
                "decision": decision.decision,
                "by": decision.decided_by_name or name_of(session, decision.decided_by),
                "on": decision.decided_at.date().isoformat(),
            }
            for decision in panel
        ],
        "notice": (
            {"method": notice.method, "on": notice.issued_at.date().isoformat()}
            if notice is not None
            else None
        ),
        "appeals": [
            {
                "received_on": appeal.received_on.isoformat(),
                "handling_manager": appeal.handling_manager_name
                or name_of(session, appeal.handling_manager),
                "outcome": appeal.outcome,
            }
            for appeal in appeals
        ],
        "last_review": (
            {"outcome": review.outcome, "on": review.reviewed_at.date().isoformat()}
            if review is not None
            else None
        ),
    }


def details(session: Session, settings: Settings, ring: KeyRing, flag: Flag) -> dict[str, Any]:
    """The flag's confidential details, decrypted: call only after the access is recorded."""
    today = datetime.now(UTC).date()
    return {
        "id": flag.id,
        "subject": {"kind": flag.subject.kind, "ref": flag.subject.ref},
        "level": flag.level,
        "level_label": settings.label("levels", flag.level),
        "categories": list(flag.categories),
        "category_labels": [settings.label("categories", c) for c in flag.categories],
        "reason": flag.unseal(ring, "reason"),
        "control_measures": flag.unseal(ring, "control_measures"),
        "reasonable_adjustments": flag.unseal(ring, "reasonable_adjustments"),
        "handling": flag.handling or "",
        "restrictions": [
            {
                "code": item["code"],
                "label": restriction_label(settings, item),
                "ends_on": item.get("ends_on"),
            }
            for item in current_restrictions(flag.restrictions or [], today)
        ],
        "responsible_manager": {
            "id": flag.responsible_manager,
            "name": name_of(session, flag.responsible_manager),
        },
        "review_due": flag.review_due.isoformat() if flag.review_due else None,
        "incidents": _incident_summaries(session, settings, flag),
        "decision": _decision_summary(session, flag),
    }
