"""The lookup service: a subject's banner, access grants for details, and the details themselves."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask_login import current_user
from sqlalchemy import Connection, Row, bindparam, exists, literal, or_, select
from sqlalchemy.orm import Bundle, Session, joinedload

from sidecar.audit import writer as audit
from sidecar.errors import Problem
from sidecar.lookup.cache import StatusCache
from sidecar.lookup.models import AccessGrant
from sidecar.policy import access
from sidecar.policy.access import (
    DETAILS_READ,
    Decision,
    FlagResource,
    GrantScope,
    IncidentResource,
)
from sidecar.policy.involvement import involvement, relations_in
from sidecar.register.case_models import (
    Appeal,
    FlagIncident,
    Notice,
    PanelDecision,
    Review,
    ReviewAssignment,
    StaffMember,
)
from sidecar.register.models import Flag, Incident, Subject, SubjectLink
from sidecar.register.references import KINDS, normalise_ref
from sidecar.register.rules import (
    PEOPLE_KINDS,
    PROTECTED_LABELS,
    Invalid,
    State,
    current_restrictions,
    highest_level,
)
from sidecar.register.staff import shown_name
from sidecar.register.status import banner_view, restriction_label
from sidecar.settings import LEVELS, Settings
from sidecar.storage.crypto import KeyRing
from sidecar.storage.database import Database, utcnow


def check_subject(kind: str, ref: str, where: str = "path") -> str:
    """The subject's canonical reference, or a 422 naming the part that is wrong."""
    problem = None
    if kind not in KINDS:
        problem = ("kind", f"must be one of {', '.join(KINDS)}")
    else:
        try:
            return normalise_ref(kind, ref)
        except Invalid as exc:
            problem = ("ref", exc.message)
    field, message = problem
    raise Problem(
        422,
        "invalid-request",
        f"{where} field '{field}': {message}",
        errors=[{"field": field, "message": message}],
    )


def find_subject(session: Session, kind: str, ref: str) -> Subject | None:
    return session.scalars(select(Subject).where(Subject.kind == kind, Subject.ref == ref)).first()


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
        with database.engine.begin() as connection:
            return status_of(connection, settings, key.id)

    return cache.get((key.id, key.status_version, utcnow().date()), load)


def viewed_banner(
    database: Database,
    cache: StatusCache,
    settings: Settings,
    kind: str,
    ref: str,
    *,
    flag_id: str | None = None,
) -> dict[str, Any]:
    """The subject's banner status for the signed-in user, their view recorded first.

    Every way of looking at a banner (the API's, the FHIR Flag's) comes here, so each is in
    the trail as one `banner.read` entry and fails closed alike: the entry is durably written
    before anything is read, cached or not, and an entry that cannot be written raises
    AuditUnavailable (503), never an answer of "no flag".
    """
    audit.record(
        audit.AuditEvent(action="banner.read", subject_kind=kind, subject_ref=ref, flag_id=flag_id)
    )
    return banner_status(database, cache, settings, kind, ref)


def status_of(connection: Connection, settings: Settings, subject_id: str) -> dict[str, Any]:
    """What every user's banner shows for the subject (which exists), read from the register.

    For a property the flags of linked customers count too, so a visit to the address is
    never planned without the warning.
    """
    flags = banner_view(connection, settings, subject_id)
    return {
        "status": highest_level((flag["level"] for flag in flags), LEVELS) or "none",
        "flags": flags,
    }


def subject_status(session: Session, settings: Settings, kind: str, ref: str) -> dict[str, Any]:
    """`status_of` a subject named by kind and reference; an unknown subject has no flags."""
    subject = find_subject(session, kind, ref)
    if subject is None:
        return NO_STATUS
    return status_of(session.connection(), settings, subject.id)


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


_GRANTS = AccessGrant.__table__
# Built once, as plain rows of the columns a decision and its audit entry use: every details
# call reads it, and building its conditions or grant entities costs more than the read.
_GRANT_COLUMNS = (
    _GRANTS.c.id,
    _GRANTS.c.user_id,
    _GRANTS.c.subject_kind,
    _GRANTS.c.subject_ref,
    _GRANTS.c.expires_at,
    _GRANTS.c.reason_code,
    _GRANTS.c.reason_text,
)
_LIVE_GRANTS = (
    select(*_GRANT_COLUMNS)
    .where(
        _GRANTS.c.user_id == bindparam("user_id"),
        _GRANTS.c.subject_kind == bindparam("kind"),
        _GRANTS.c.subject_ref == bindparam("ref"),
        _GRANTS.c.expires_at > bindparam("now"),
    )
    .order_by(_GRANTS.c.created_at.desc())
)
# The properties whose banner shows a customer's flags.
_SHOWN_ON = (
    select(_SUBJECTS.c.ref)
    .select_from(_LINKS.join(_SUBJECTS, _SUBJECTS.c.id == _LINKS.c.property_id))
    .where(_LINKS.c.customer_id == bindparam("subject_id"))
)
_LIVE_GRANTS_SHOWING = (
    select(*_GRANT_COLUMNS)
    .where(
        _GRANTS.c.user_id == bindparam("user_id"),
        or_(
            (_GRANTS.c.subject_kind == bindparam("kind"))
            & (_GRANTS.c.subject_ref == bindparam("ref")),
            (_GRANTS.c.subject_kind == "property")
            & _GRANTS.c.subject_ref.in_(bindparam("properties", expanding=True)),
        ),
        _GRANTS.c.expires_at > bindparam("now"),
    )
    .order_by(_GRANTS.c.created_at.desc())
)


def live_grants(session: Session, user_id: str, kind: str, ref: str, now: datetime) -> list[Row]:
    """The user's unexpired grants for the subject, newest first, as rows of `_LIVE_GRANTS`."""
    parameters = {"user_id": user_id, "kind": kind, "ref": ref, "now": now}
    return session.connection().execute(_LIVE_GRANTS, parameters).all()


def shown_on(session: Session, flag: Flag) -> frozenset[tuple[str, str]]:
    """The other subjects whose banner shows the flag: a customer's linked properties."""
    if flag.subject.kind != "customer":
        return frozenset()
    refs = session.connection().execute(_SHOWN_ON, {"subject_id": flag.subject_id}).scalars()
    return frozenset(("property", ref) for ref in refs)


def opening_grants(
    session: Session, flag: Flag, user_id: str, now: datetime, showing: Iterable[tuple[str, str]]
) -> list[Row]:
    """The user's live grants that open this flag's details, newest first: for its subject
    or for a subject whose banner shows it (`showing`)."""
    # A grant states a need to know how to deal with the subject today: it opens the flags
    # the banner shows (active ones), never a rejected proposal or an ended flag.
    if flag.state != State.ACTIVE.value:
        return []
    properties = [ref for kind, ref in showing if kind == "property"]
    if not properties:
        return live_grants(session, user_id, flag.subject.kind, flag.subject.ref, now)
    parameters = {
        "user_id": user_id,
        "kind": flag.subject.kind,
        "ref": flag.subject.ref,
        "properties": properties,
        "now": now,
    }
    return session.connection().execute(_LIVE_GRANTS_SHOWING, parameters).all()


def resource_of(
    flag: Flag,
    relations: Mapping[str, Collection[str]],
    grants: Iterable[Row],
    showing: frozenset[tuple[str, str]] = frozenset(),
) -> FlagResource:
    """What the access policy needs to decide on the flag's details."""
    return FlagResource(
        flag_id=flag.id,
        subject_kind=flag.subject.kind,
        subject_ref=flag.subject.ref,
        relations={user: frozenset(held) for user, held in relations.items()},
        grants=tuple(
            GrantScope(g.id, g.user_id, g.subject_kind, g.subject_ref, g.expires_at) for g in grants
        ),
        shown_on=showing,
    )


def details_access(session: Session, flag: Flag, now: datetime) -> tuple[Decision, list[Row]]:
    """The access policy's answer on this flag's confidential fields for the signed-in user,
    with the live grants that opened it (newest first), whose purpose the audit entry names.

    The case record and the letters ask here, and the details endpoint asks the same policy
    with the same resource (`FlagCase.resource`), so one rule (details.request plus a grant
    or a relationship) decides every disclosure.
    """
    showing = shown_on(session, flag)
    grants = opening_grants(session, flag, current_user.id, now, showing)
    resource = resource_of(flag, involvement(session, flag), grants, showing)
    return access.decide(current_user, DETAILS_READ, resource), grants


def may_read_details(session: Session, flag: Flag, now: datetime) -> Decision:
    """`details_access` without the grants."""
    return details_access(session, flag, now)[0]


def access_purpose(decision: Decision, grants: Sequence[Row]) -> dict[str, str]:
    """The purpose an allowed disclosure's audit entry records: the grant's, or the relationship."""
    if grants:
        return {"purpose_code": grants[0].reason_code, "purpose_text": grants[0].reason_text}
    return {"purpose_code": "relationship", "purpose_text": decision.basis}


def incident_access(
    session: Session, incidents: Sequence[Incident], subject: Subject, now: datetime
) -> dict[str, Decision]:
    """The policy's answer on each incident's narrative and triage considerations.

    The same rule as a flag's details: a role holding details.request, and a live grant of
    the signed-in user for the incident's subject or a part in its case (its reporter, the
    manager who triaged it, or anyone involved in a flag it is linked to).
    """
    if not incidents:
        return {}
    grants = live_grants(session, current_user.id, subject.kind, subject.ref, now)
    scopes = tuple(
        GrantScope(g.id, g.user_id, g.subject_kind, g.subject_ref, g.expires_at) for g in grants
    )
    linked: dict[str, list[Flag]] = {}
    for incident_id, flag in session.execute(
        select(FlagIncident.incident_id, Flag)
        .join(Flag, Flag.id == FlagIncident.flag_id)
        .where(FlagIncident.incident_id.in_([i.id for i in incidents]))
    ):
        linked.setdefault(incident_id, []).append(flag)
    parties = {flag.id: involvement(session, flag) for flags in linked.values() for flag in flags}
    decisions = {}
    for incident in incidents:
        relations: dict[str, set[str]] = {}
        for flag in linked.get(incident.id, []):
            for user, held in parties[flag.id].items():
                relations.setdefault(user, set()).update(held)
        relations.setdefault(incident.reported_by, set()).add("reporter")
        if incident.triage_by:
            relations.setdefault(incident.triage_by, set()).add("triage_manager")
        resource = IncidentResource(
            incident_id=incident.id,
            subject_kind=subject.kind,
            subject_ref=subject.ref,
            relations={user: frozenset(held) for user, held in relations.items()},
            grants=scopes,
        )
        decisions[incident.id] = access.decide(current_user, DETAILS_READ, resource)
    return decisions


# The details' reads, built once: each is one statement for the whole of its part of the case,
# with the staff directory's names joined in so that no name costs a query of its own.
_NOTICE = Bundle(
    "notice", Notice.method, Notice.issued_at, Notice.issued_by, Notice.director_permission_by
)
_FLAG = (
    select(Flag, StaffMember.name.label("manager_name"), _NOTICE)
    .options(joinedload(Flag.subject, innerjoin=True))
    .outerjoin(StaffMember, StaffMember.id == Flag.responsible_manager)
    .outerjoin(Notice, Notice.flag_id == Flag.id)
    .where(Flag.id == bindparam("flag_id"))
)
_PANEL = (
    select(
        PanelDecision.role,
        PanelDecision.decision,
        PanelDecision.decided_by,
        PanelDecision.decided_by_name,
        PanelDecision.decided_at,
        StaffMember.name.label("directory_name"),
    )
    .outerjoin(StaffMember, StaffMember.id == PanelDecision.decided_by)
    .where(PanelDecision.flag_id == bindparam("flag_id"))
    .order_by(PanelDecision.decided_at)
)
_APPEALS = (
    select(
        Appeal.received_on,
        Appeal.handling_manager,
        Appeal.handling_manager_name,
        Appeal.outcome,
        Appeal.decided_by,
        StaffMember.name.label("directory_name"),
    )
    .outerjoin(StaffMember, StaffMember.id == Appeal.handling_manager)
    .where(Appeal.flag_id == bindparam("flag_id"))
    .order_by(Appeal.lodged_at)
)
_REVIEWS = (
    select(Review.outcome, Review.reviewed_by, Review.reviewed_at, Review.assignment_id)
    .where(Review.flag_id == bindparam("flag_id"))
    .order_by(Review.reviewed_at.desc())
)
_ASSIGNED_REVIEWERS = select(ReviewAssignment.reviewer).where(
    ReviewAssignment.flag_id == bindparam("flag_id"), ReviewAssignment.ended_at.is_(None)
)
_INCIDENTS = (
    select(
        Incident.id,
        Incident.occurred_at,
        Incident.channel,
        Incident.behaviour_types,
        Incident.warning_given,
        Incident.reporter_kind,
        Incident.reporter_name,
    )
    .join(FlagIncident, FlagIncident.incident_id == Incident.id)
    .where(FlagIncident.flag_id == bindparam("flag_id"))
    .order_by(Incident.occurred_at)
)


@dataclass(frozen=True)
class FlagCase:
    """A flag and the rows of its case that its details show, as read for one reader.

    Everything the access decision and the details need is read in one transaction, so
    what is disclosed is what was decided on. Nothing here is decrypted: the flag's sealed
    fields are opened by `details`, once the access is recorded.
    """

    flag: Flag
    grants: list[Row]
    """The reader's live grants that open the flag, newest first."""
    showing: frozenset[tuple[str, str]]
    """The other subjects whose banner shows the flag."""
    manager_name: str | None
    notice: Row[Any] | None
    panel: Sequence[Row[Any]]
    appeals: Sequence[Row[Any]]
    reviews: Sequence[Row[Any]]
    """Newest first."""
    incidents: Sequence[Row[Any]]
    assignments: Sequence[Row[Any]] = ()
    """The reviewers the open review assignment names."""

    def resource(self) -> FlagResource:
        relations = relations_in(
            self.flag,
            panel=self.panel,
            appeals=self.appeals,
            notices=[self.notice] if self.notice is not None else [],
            reviews=self.reviews,
            assignments=self.assignments,
        )
        return resource_of(self.flag, relations, self.grants, self.showing)


def read_case(session: Session, flag_id: str, user_id: str, now: datetime) -> FlagCase | None:
    """The flag with its case for this reader; None for an unknown or purged flag."""
    found = session.execute(_FLAG, {"flag_id": flag_id}).first()
    if found is None or found.Flag.purged_at is not None:
        return None
    flag = found.Flag
    # The parts are plain rows, not entities: run on the session's connection, they skip the
    # ORM's set-up of each result, a good part of what a small read costs.
    rows = session.connection().execute
    of_flag = {"flag_id": flag.id}
    showing = shown_on(session, flag)
    return FlagCase(
        flag=flag,
        grants=opening_grants(session, flag, user_id, now, showing),
        showing=showing,
        manager_name=found.manager_name,
        # An outer join yields a notice of nulls when there is none; a notice has a method.
        notice=found.notice if found.notice.method is not None else None,
        panel=rows(_PANEL, of_flag).all(),
        appeals=rows(_APPEALS, of_flag).all(),
        reviews=rows(_REVIEWS, of_flag).all(),
        incidents=rows(_INCIDENTS, of_flag).all(),
        assignments=rows(_ASSIGNED_REVIEWERS, of_flag).all(),
    )


def _incident_summaries(settings: Settings, ring: KeyRing, case: FlagCase) -> list[dict[str, Any]]:
    return [
        {
            "id": incident.id,
            "occurred_on": incident.occurred_at.date().isoformat(),
            "channel": settings.label("channels", incident.channel),
            "behaviour": [settings.label("behaviour_types", b) for b in incident.behaviour_types],
            "warning_given": incident.warning_given,
            **_happened_to(ring, incident),
        }
        for incident in case.incidents
    ]


def _happened_to(ring: KeyRing, incident: Any) -> dict[str, Any]:
    """The councillor or contractor an incident happened to, by name; nothing for staff."""
    kind = incident.reporter_kind or "staff"
    if kind == "staff":
        return {}
    name = None
    if incident.reporter_name is not None:
        name = ring.decrypt(
            incident.reporter_name,
            table=Incident.__tablename__,
            row_id=incident.id,
            column="reporter_name",
        )
    return {"happened_to": {"kind": kind, "label": PEOPLE_KINDS[kind], "name": name}}


def _protects(ring: KeyRing, flag: Flag) -> dict[str, Any]:
    """Whom the flag protects, where that is more than staff, with the people by name."""
    kinds = flag.protects or ["staff"]
    if kinds == ["staff"]:
        return {}
    return {
        "protects": {
            "kinds": [PROTECTED_LABELS[kind] for kind in kinds],
            "people": flag.unseal(ring, "protected_people"),
        }
    }


def _decision_summary(settings: Settings, case: FlagCase) -> dict[str, Any]:
    flag, notice = case.flag, case.notice
    review = case.reviews[0] if case.reviews else None
    return {
        "state": flag.state,
        "activated_on": flag.activated_at.date().isoformat() if flag.activated_at else None,
        "panel": [
            {
                "role": decision.role,
                "role_label": settings.access.role_name(decision.role),
                "decision": decision.decision,
                "by": decision.decided_by_name
                or shown_name(decision.decided_by, decision.directory_name),
                "on": decision.decided_at.date().isoformat(),
            }
            for decision in case.panel
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
                or shown_name(appeal.handling_manager, appeal.directory_name),
                "outcome": appeal.outcome,
            }
            for appeal in case.appeals
        ],
        "last_review": (
            {"outcome": review.outcome, "on": review.reviewed_at.date().isoformat()}
            if review is not None
            else None
        ),
    }


def details(settings: Settings, ring: KeyRing, case: FlagCase) -> dict[str, Any]:
    """The flag's confidential details, decrypted: call only after the access is recorded."""
    flag = case.flag
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
        "adjustments": list(flag.adjustments or []),
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
            "name": shown_name(flag.responsible_manager, case.manager_name),
        },
        "review_due": flag.review_due.isoformat() if flag.review_due else None,
        **_protects(ring, flag),
        "incidents": _incident_summaries(settings, ring, case),
        "decision": _decision_summary(settings, case),
    }
