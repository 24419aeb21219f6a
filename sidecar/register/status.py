"""A subject's flag status as the banner and the CRM see it (never a confidential field).

`status_changed` is the single choke point every change to what the banner or CRM shows goes
through: it bumps the subject's status version, so connectors never apply an older status and
the banner cache (keyed by the version) never serves one.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, String, bindparam, literal, select, union_all, update
from sqlalchemy.orm import Session

from sidecar.register.case_models import Appeal, Notice, StaffMember
from sidecar.register.models import Flag, Subject, SubjectLink
from sidecar.register.rules import State, appeal_deadline, current_restrictions, highest_level
from sidecar.register.staff import shown_name
from sidecar.settings import LEVELS, Settings
from sidecar.storage.database import utcnow
from sidecar.sync.models import StatusChange


def active_flags(session: Session, subject: Subject) -> list[Flag]:
    """The subject's active flags, highest level first, then oldest first."""
    flags = session.scalars(
        select(Flag)
        .where(Flag.subject_id == subject.id, Flag.state == State.ACTIVE.value)
        .order_by(Flag.activated_at, Flag.id)
    ).all()
    return _highest_first(flags)


class _Levelled(Protocol):
    level: str


_L = TypeVar("_L", bound=_Levelled)


def _highest_first(flags: Iterable[_L]) -> list[_L]:
    # A stable sort: flags of one level keep the order they were activated in.
    return sorted(flags, key=lambda f: -LEVELS.index(f.level) if f.level in LEVELS else 0)


def restriction_label(settings: Settings, item: dict[str, Any]) -> str:
    """The catalogue label with the restriction's note, e.g. "Time-limited calls: 10 minutes"."""
    label = settings.label("restrictions", item["code"])
    note = (item.get("note") or "").strip()
    return f"{label}: {note}" if note else label


_FLAGS = Flag.__table__
_SUBJECTS = Subject.__table__
_LINKS = SubjectLink.__table__
_APPEALS = Appeal.__table__
_STAFF = StaffMember.__table__
_BANNER_COLUMNS = (
    _FLAGS.c.id,
    _FLAGS.c.subject_id,
    _FLAGS.c.level,
    _FLAGS.c.categories,
    _FLAGS.c.restrictions,
    _FLAGS.c.handling,
    _FLAGS.c.adjustments,
    _FLAGS.c.review_due,
    _FLAGS.c.activated_at,
)
# Built once: a banner read on a cache miss. Each branch is an index probe (flags by subject
# and state; links by property), so the cost does not grow with the register.
_OWN_FLAGS = select(*_BANNER_COLUMNS, literal(None, String).label("customer_ref")).where(
    _FLAGS.c.subject_id == bindparam("subject_id"), _FLAGS.c.state == State.ACTIVE.value
)
_LINKED_FLAGS = (
    select(*_BANNER_COLUMNS, _SUBJECTS.c.ref.label("customer_ref"))
    .select_from(
        _LINKS.join(_SUBJECTS, _SUBJECTS.c.id == _LINKS.c.customer_id).join(
            _FLAGS, _FLAGS.c.subject_id == _LINKS.c.customer_id
        )
    )
    .where(_LINKS.c.property_id == bindparam("subject_id"), _FLAGS.c.state == State.ACTIVE.value)
)
_OWN_AND_LINKED_FLAGS = union_all(_OWN_FLAGS, _LINKED_FLAGS)
_PENDING_APPEALS = (
    select(
        _APPEALS.c.flag_id,
        _APPEALS.c.handling_manager,
        _APPEALS.c.handling_manager_name,
        _STAFF.c.name.label("directory_name"),
    )
    .select_from(_APPEALS.outerjoin(_STAFF, _STAFF.c.id == _APPEALS.c.handling_manager))
    .where(_APPEALS.c.flag_id.in_(bindparam("flag_ids", expanding=True)))
    .where(_APPEALS.c.outcome.is_(None))
    .order_by(_APPEALS.c.lodged_at.desc())
)

_NOTICES = Notice.__table__
# The Senior Manager each own flag's decision letter named (lifecycle.name_handler_in_window).
_NAMED_HANDLERS = (
    select(
        _NOTICES.c.flag_id,
        _NOTICES.c.issued_at,
        _NOTICES.c.handling_manager,
        _NOTICES.c.handling_manager_name,
    )
    .where(_NOTICES.c.flag_id.in_(bindparam("flag_ids", expanding=True)))
    .where(_NOTICES.c.handling_manager.is_not(None))
)


def banner_view(
    connection: Connection, settings: Settings, subject_id: str, *, linked: bool = True
) -> list[dict[str, Any]]:
    """The subject's active flags as its banner shows them, in two statements at most.

    Its own flags come first, highest level first, then oldest first; then (with `linked`,
    for a property) each linked customer's, customers in order of reference, as level and
    their terms (restrictions, handling, adjustments), which a visit to the address needs. A
    pending appeal is shown on the subject's own flags, with the manager handling the earliest.
    """
    query = _OWN_AND_LINKED_FLAGS if linked else _OWN_FLAGS
    rows = connection.execute(query, {"subject_id": subject_id}).all()
    if not rows:
        return []
    rows.sort(
        key=lambda row: (
            row.customer_ref is not None,
            row.customer_ref or "",
            row.activated_at is None,
            row.activated_at,
            row.id,
        )
    )
    own = [row.id for row in rows if row.customer_ref is None]
    appeals = _pending_appeals(connection, own)
    today = utcnow().date()
    named = _named_in_window(connection, settings, own, today)
    shown = []
    for customer_ref, group in itertools.groupby(rows, key=lambda row: row.customer_ref):
        for row in _highest_first(group):
            shown.append(
                _banner_flag(settings, row, appeals.get(row.id), named.get(row.id), today)
                if customer_ref is None
                else _linked_flag(settings, row, today)
            )
    return shown


def _pending_appeals(connection: Connection, flag_ids: list[str]) -> dict[str, Any]:
    """By flag, its earliest pending appeal with its handler's names."""
    appeals: dict[str, Any] = {}
    if flag_ids:
        # Latest first, so the earliest pending appeal of each flag is the one kept.
        for appeal in connection.execute(_PENDING_APPEALS, {"flag_ids": flag_ids}):
            appeals[appeal.flag_id] = appeal
    return appeals


def _handler_name(appeal: Any, named: str | None) -> str | None:
    """The Senior Manager handling the case: the pending appeal's, else the one the decision
    letter named while the window is open (`named`, where the settings name one)."""
    if appeal is not None:
        name = appeal.handling_manager_name or shown_name(
            appeal.handling_manager, appeal.directory_name
        )
        if name:
            return name
    return named


def _named_in_window(
    connection: Connection, settings: Settings, flag_ids: list[str], today: date
) -> dict[str, str]:
    """By flag, the Senior Manager its decision letter named, while its appeal window is open
    (Eastleigh 30); nothing unless the settings name one (lifecycle.name_handler_in_window)."""
    if not flag_ids or not settings.lifecycle.name_handler_in_window:
        return {}
    days = settings.policy.appeal_window_days
    return {
        row.flag_id: row.handling_manager_name or row.handling_manager
        for row in connection.execute(_NAMED_HANDLERS, {"flag_ids": flag_ids})
        if today <= appeal_deadline(row.issued_at.date(), days)
    }


def _labelled(settings: Settings, flag: Any, today: date) -> dict[str, Any]:
    """What every banner shows of a flag, its own or a linked customer's: no confidential field."""
    return {
        "id": flag.id,
        "level": flag.level,
        "level_label": settings.label("levels", flag.level),
        "categories": list(flag.categories),
        "category_labels": [settings.label("categories", c) for c in flag.categories],
        "restrictions": [
            {"code": item["code"], "label": restriction_label(settings, item)}
            for item in current_restrictions(flag.restrictions or [], today)
        ],
        "handling": flag.handling or "",
        "adjustments": list(flag.adjustments or []),
    }


def _banner_flag(
    settings: Settings, flag: Any, appeal: Any, named: str | None, today: date
) -> dict[str, Any]:
    """One of the subject's own active flags in the contract's banner shape."""
    return {
        **_labelled(settings, flag, today),
        "review_due": flag.review_due.isoformat() if flag.review_due else None,
        "appeal": {
            "pending": appeal is not None,
            "handling_manager": _handler_name(appeal, named),
        },
    }


def _linked_flag(settings: Settings, flag: Any, today: date) -> dict[str, Any]:
    """A linked customer's flag as a property's banner shows it, naming the customer only
    where the council's settings allow (`lookup.name_linked_customers`)."""
    linked: dict[str, Any] = {"kind": "customer"}
    if settings.lookup.name_linked_customers:
        linked["ref"] = flag.customer_ref
    return {
        **_labelled(settings, flag, today),
        "review_due": None,
        "appeal": {"pending": False, "handling_manager": None},
        "linked": linked,
    }


def banner_flags(session: Session, settings: Settings, subject: Subject) -> list[dict[str, Any]]:
    """The subject's own active flags for the banner (linked subjects' flags not included)."""
    return banner_view(session.connection(), settings, subject.id, linked=False)


def linked_customers(session: Session, subject: Subject) -> list[Subject]:
    """Customers linked to a property (none for a customer)."""
    if subject.kind != "property":
        return []
    return list(
        session.scalars(
            select(Subject)
            .join(SubjectLink, SubjectLink.customer_id == Subject.id)
            .where(SubjectLink.property_id == subject.id)
            .order_by(Subject.ref)
        )
    )


def status_changed(session: Session, subject: Subject) -> None:
    """Record that what the banner or CRM shows for the subject has changed.

    Call inside the transaction that made the change. A property's status includes its
    linked customers' flags, so a customer's change also bumps each linked property.
    """
    ids = [subject.id]
    if subject.kind == "customer":
        ids += list(
            session.scalars(
                select(SubjectLink.property_id).where(SubjectLink.customer_id == subject.id)
            )
        )
    session.execute(
        update(Subject)
        .where(Subject.id.in_(ids))
        .values(status_version=Subject.status_version + 1)
        .execution_options(synchronize_session="fetch")
    )
    # The outbox rows, in this same transaction: a committed change cannot miss the CRMs.
    versions = session.execute(
        select(Subject.id, Subject.status_version).where(Subject.id.in_(ids))
    ).all()
    session.add_all(StatusChange(subject_id=sid, version=version) for sid, version in versions)


def crm_status(session: Session, settings: Settings, subject: Subject) -> dict[str, Any]:
    """What a connector may write into the CRM: status only, never reasons or narratives.

    A property's status also carries the level and categories of its linked customers'
    flags (not their restrictions or adjustments), as its banner does.
    """
    own = active_flags(session, subject)
    linked = [f for c in linked_customers(session, subject) for f in active_flags(session, c)]
    today = utcnow().date()
    lines = _appeal_lines(session.connection(), settings, [f.id for f in own], today)
    return _crm_status_of(settings, subject, own, linked, lines, today)


def crm_statuses(
    session: Session, settings: Settings, subjects: Sequence[Subject]
) -> dict[str, dict[str, Any]]:
    """`crm_status` of each of many subjects, by subject id, in four queries for them all.

    For a reconciliation, up to a thousand subjects at a time, where `crm_status` runs several
    queries per subject: the properties' linked customers, the active flags of the subjects
    and of those customers, the pending appeals on the subjects' own flags and (where the
    settings name the handler in the window) their notices. Each query names the batch's
    subjects or their own active flags only, however many links they have.
    """
    if not subjects:
        return {}
    today = utcnow().date()
    ids = [s.id for s in subjects]
    properties = [s.id for s in subjects if s.kind == "property"]
    customers_of: dict[str, list[str]] = defaultdict(list)
    if properties:
        links = session.execute(
            select(SubjectLink.property_id, Subject.id)
            .join(SubjectLink, SubjectLink.customer_id == Subject.id)
            .where(SubjectLink.property_id.in_(properties))
            .order_by(SubjectLink.property_id, Subject.ref)
        )
        for property_id, customer_id in links:
            customers_of[property_id].append(customer_id)
    linked_customer_ids = select(SubjectLink.customer_id).where(
        SubjectLink.property_id.in_(properties)
    )
    activated: dict[str, list[Flag]] = defaultdict(list)
    flags = session.scalars(
        select(Flag)
        .where(
            Flag.subject_id.in_(ids) | Flag.subject_id.in_(linked_customer_ids),
            Flag.state == State.ACTIVE.value,
        )
        .order_by(Flag.activated_at, Flag.id)
    )
    for flag in flags:
        activated[flag.subject_id].append(flag)
    flags_of = {subject_id: _highest_first(flags) for subject_id, flags in activated.items()}
    own_ids = [f.id for subject_id in ids for f in flags_of.get(subject_id, [])]
    lines = _appeal_lines(session.connection(), settings, own_ids, today)
    statuses = {}
    for subject in subjects:
        own = flags_of.get(subject.id, [])
        linked = [f for c in customers_of.get(subject.id, []) for f in flags_of.get(c, [])]
        statuses[subject.id] = _crm_status_of(settings, subject, own, linked, lines, today)
    return statuses


@dataclass(frozen=True)
class _AppealLines:
    """What the CRM is told of the appeals on a batch of own flags."""

    pending: frozenset[str]
    """Flags with an appeal pending."""
    handlers: dict[str, str]
    """By flag, the name of the Senior Manager handling the case, where one is named."""


def _appeal_lines(
    connection: Connection, settings: Settings, flag_ids: list[str], today: date
) -> _AppealLines:
    appeals = _pending_appeals(connection, flag_ids)
    named = _named_in_window(connection, settings, flag_ids, today)
    handlers = {}
    for flag_id in {*appeals, *named}:
        name = _handler_name(appeals.get(flag_id), named.get(flag_id))
        if name:
            handlers[flag_id] = name
    return _AppealLines(frozenset(appeals), handlers)


def _crm_status_of(
    settings: Settings,
    subject: Subject,
    own: list[Flag],
    linked: list[Flag],
    lines: _AppealLines,
    today: date,
) -> dict[str, Any]:
    # The one definition of the CRM's status, shared by `crm_status` and `crm_statuses`.
    categories: list[str] = []
    for flag in own + linked:
        for code in flag.categories:
            label = settings.label("categories", code)
            if label not in categories:
                categories.append(label)
    restrictions: list[str] = []
    for flag in own:
        for item in current_restrictions(flag.restrictions or [], today):
            label = restriction_label(settings, item)
            if label not in restrictions:
                restrictions.append(label)
    # Adjustments are the subject's own (as restrictions are): a property's linked customers'
    # adjustments are for dealing with them, not with whoever answers at the property.
    adjustments: list[str] = []
    for flag in own:
        for adjustment in flag.adjustments or []:
            if adjustment not in adjustments:
                adjustments.append(adjustment)
    reviews = [f.review_due for f in own if f.review_due is not None]
    level = highest_level((f.level for f in own + linked), LEVELS)
    return {
        "subject": {"kind": subject.kind, "ref": subject.ref},
        "level": level or "none",
        "level_label": settings.label("levels", level) if level else "No flag",
        "categories": categories,
        "restrictions": restrictions,
        "review_due": min(reviews).isoformat() if reviews else None,
        "appeal_pending": any(f.id in lines.pending for f in own),
        # Of the subject's own flags, highest level first, the first with a handler named.
        "appeal_handler": next((lines.handlers[f.id] for f in own if f.id in lines.handlers), None),
        "adjustments": adjustments,
        "version": subject.status_version,
    }
