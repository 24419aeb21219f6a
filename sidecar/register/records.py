"""A flag's record as the case-management API shows it: state, terms, decisions, history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sidecar.policy.involvement import open_assignments
from sidecar.register import appeals, history, notices
from sidecar.register.case_models import Appeal, FlagIncident, Notice, PanelDecision, Review
from sidecar.register.flags import votes_of
from sidecar.register.models import Flag
from sidecar.register.rules import (
    ALLOWED,
    PROTECTED_LABELS,
    Seats,
    State,
    appeal_deadline,
    awaiting_roles,
    notice_overdue,
    review_standing,
)
from sidecar.register.staff import name_of
from sidecar.register.status import restriction_label
from sidecar.settings import Settings
from sidecar.storage.crypto import KeyRing


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class _CaseRows:
    """The rows a record is built from, read once and shared by its open and sealed parts."""

    notice: Notice | None
    panel: list[PanelDecision]
    appeals: list[Appeal]
    reviews: list[Review]

    @classmethod
    def of(cls, session: Session, flag: Flag) -> _CaseRows:
        return cls(
            notice=notices.notice_of(session, flag),
            panel=list(
                session.scalars(
                    select(PanelDecision)
                    .where(PanelDecision.flag_id == flag.id)
                    .order_by(PanelDecision.decided_at)
                )
            ),
            appeals=appeals.appeals_of(session, flag),
            reviews=list(
                session.scalars(
                    select(Review).where(Review.flag_id == flag.id).order_by(Review.reviewed_at)
                )
            ),
        )


def flag_json(
    session: Session,
    settings: Settings,
    keyring: KeyRing,
    flag: Flag,
    *,
    confidential: bool,
    now: datetime,
) -> dict[str, Any]:
    """The record; sealed fields are opened only when `confidential` (the caller audits that)."""
    rows = _CaseRows.of(session, flag)
    record = {
        **_terms(settings, flag, now),
        "incident_ids": list(
            session.scalars(select(FlagIncident.incident_id).where(FlagIncident.flag_id == flag.id))
        ),
        "panel": _panel(session, settings, flag, rows.panel),
        **_notice(settings, flag, rows.notice, now),
        "appeals": [_appeal(session, settings, a) for a in rows.appeals],
        "reviews": [_review(r) for r in rows.reviews],
        "review_assignment": _review_assignment(session, flag),
        "letters": [notices.letter_json(item) for item in notices.letters_of(session, flag)],
        "history": history.history(session, flag),
        "confidential_included": confidential,
    }
    if confidential:
        record["confidential"] = _sealed(keyring, flag, rows)
        if settings.appeals.deciders_needed > 1:
            for sealed, appeal in zip(record["confidential"]["appeals"], rows.appeals, strict=True):
                sealed["decider_reasons"] = [
                    {"role": d.role, "reasons": d.unseal(keyring, "reasons")}
                    for d in appeals.decisions_of(session, appeal)
                ]
    return record


def _terms(settings: Settings, flag: Flag, now: datetime) -> dict[str, Any]:
    """The flag's state and terms, with the labels staff read."""
    return {
        "id": flag.id,
        "reference": flag.reference,
        "subject": {"kind": flag.subject.kind, "ref": flag.subject.ref},
        "state": flag.state,
        "allowed_actions": [a.value for a in ALLOWED[State(flag.state)]],
        "level": flag.level,
        "categories": list(flag.categories),
        "category_labels": [settings.label("categories", c) for c in flag.categories],
        "restrictions": [
            {**r, "label": restriction_label(settings, r)} for r in flag.restrictions or []
        ],
        "handling": flag.handling,
        "adjustments": list(flag.adjustments or []),
        "protects": [
            {"kind": kind, "label": PROTECTED_LABELS[kind]} for kind in flag.protects or ["staff"]
        ],
        "warning": {
            "given_on": _iso(flag.warning_given_on),
            "not_given": flag.no_warning_reason is not None,
        },
        "responsible_manager": flag.responsible_manager,
        "review_months": flag.review_months,
        "review_due": _iso(flag.review_due),
        "review_standing": review_standing(
            flag.review_due, now.date(), settings.lifecycle.review_due_soon_days
        )
        if flag.state == State.ACTIVE.value
        else None,
        "ends_on": _iso(flag.ends_on),
        "provenance": flag.provenance,
        "proposed_by": flag.proposed_by,
        "proposed_at": _iso(flag.proposed_at),
        "activated_at": _iso(flag.activated_at),
        "ended_at": _iso(flag.ended_at),
        "purged_at": _iso(flag.purged_at),
    }


def _panel(
    session: Session, settings: Settings, flag: Flag, panel: list[PanelDecision]
) -> dict[str, Any]:
    return {
        "decisions": [
            {
                "role": d.role,
                "decision": d.decision,
                "decided_by": {"id": d.decided_by, "name": d.decided_by_name},
                "decided_at": _iso(d.decided_at),
            }
            for d in panel
        ],
        "awaiting": awaiting_roles(votes_of(session, flag), Seats.of(settings.panel))
        if flag.state == State.PROPOSED.value
        else [],
    }


def _notice(settings: Settings, flag: Flag, notice: Notice | None, now: datetime) -> dict[str, Any]:
    """How the person was told, whether telling them is overdue, and the appeal window."""
    window = (
        appeal_deadline(notice.issued_at.date(), settings.policy.appeal_window_days)
        if notice
        else None
    )
    return {
        "notice": None
        if notice is None
        else {
            "method": notice.method,
            "issued_at": _iso(notice.issued_at),
            "issued_by": notice.issued_by,
            "legal_guidance_ref": notice.legal_guidance_ref,
            "director_permission_by": notice.director_permission_by,
        },
        "notice_overdue": flag.state == State.ACTIVE.value
        and notice_overdue(
            flag.activated_at, notice is not None, now, settings.policy.notice_due_days
        ),
        "appeal_window_closes": _iso(window),
    }


def _appeal(session: Session, settings: Settings, appeal: Appeal) -> dict[str, Any]:
    shown = {
        "id": appeal.id,
        "state": "pending" if appeal.outcome is None else "decided",
        "received_on": _iso(appeal.received_on),
        "handling_manager": {
            "id": appeal.handling_manager,
            "name": appeals.handling_name(session, appeal),
        }
        if appeal.handling_manager
        else None,
        "outcome": appeal.outcome,
        "decided_by": appeal.decided_by,
        "decided_at": _iso(appeal.decided_at),
    }
    if settings.appeals.deciders_needed > 1:
        # Where several must agree: each decider's outcome so far, and whose is awaited.
        decided = appeals.decisions_of(session, appeal)
        shown["decisions"] = [
            {
                "role": d.role,
                "outcome": d.outcome,
                "decided_by": {"id": d.decided_by, "name": d.decided_by_name},
                "decided_at": _iso(d.decided_at),
            }
            for d in decided
        ]
        shown["awaiting"] = appeals.awaiting(settings, decided) if appeal.outcome is None else []
    return shown


def _review(review: Review) -> dict[str, Any]:
    return {
        "outcome": review.outcome,
        "reviewed_by": review.reviewed_by,
        "reviewed_at": _iso(review.reviewed_at),
        "was_due": _iso(review.was_due),
        "next_review_due": _iso(review.next_review_due),
        "parties": list(review.parties or []),
    }


def _review_assignment(session: Session, flag: Flag) -> dict[str, Any] | None:
    """Who the open review assignment names, by whom and when; None when none is open."""
    assigned = open_assignments(session, flag.id)
    if not assigned:
        return None
    return {
        "reviewers": [{"id": a.reviewer, "name": name_of(session, a.reviewer)} for a in assigned],
        "assigned_by": assigned[0].assigned_by,
        "assigned_at": _iso(assigned[0].assigned_at),
    }


def _sealed(keyring: KeyRing, flag: Flag, rows: _CaseRows) -> dict[str, Any]:
    """The confidential part: reason, measures, withdrawal reason, the panel's assessments,
    grounds, reasons and notes."""
    notice = rows.notice
    return {
        "reason": flag.unseal(keyring, "reason"),
        "control_measures": flag.unseal(keyring, "control_measures"),
        "reasonable_adjustments": flag.unseal(keyring, "reasonable_adjustments"),
        "no_warning_reason": flag.unseal(keyring, "no_warning_reason"),
        "protected_people": flag.unseal(keyring, "protected_people"),
        "withdrawal_reason": flag.unseal(keyring, "withdrawal_reason"),
        "panel_assessments": [
            {
                "role": d.role,
                "severity": d.unseal(keyring, "severity"),
                "frequency": d.unseal(keyring, "frequency"),
                "proportionality": d.unseal(keyring, "proportionality"),
                "reasonable_adjustments": d.unseal(keyring, "reasonable_adjustments"),
            }
            for d in rows.panel
        ],
        "notice": None
        if notice is None
        else {
            "withheld_reason": notice.unseal(keyring, "withheld_reason"),
            "recipient_name": notice.unseal(keyring, "recipient_name"),
            "recipient_address": notice.unseal(keyring, "recipient_address"),
        },
        "appeals": [
            {
                "id": a.id,
                "grounds": a.unseal(keyring, "grounds"),
                "reasons": a.unseal(keyring, "reasons"),
            }
            for a in rows.appeals
        ],
        "reviews": [
            {"reviewed_at": _iso(r.reviewed_at), "notes": r.unseal(keyring, "notes")}
            for r in rows.reviews
        ],
    }
