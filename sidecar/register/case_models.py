"""The lifecycle's tables: history, panel decisions, notices, letters, appeals, reviews, staff."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from sidecar.storage.database import Base, Confidential, Entity, UTCDateTime, utcnow


class HistoryIsImmutable(Exception):
    """Someone tried to change or delete a flag's history record."""


class FlagEvent(Entity, Base):
    """One state change or decision on a flag: who, when, what, why. Never changed.

    `why` is readable by everyone who may read the flag's record, so it holds the decision
    in words, never the confidential reasons (those live encrypted in their own tables).
    """

    __tablename__ = "flag_history"
    __table_args__ = (UniqueConstraint("flag_id", "seq", name="uq_flag_history_flag_seq"),)

    flag_id: Mapped[str] = mapped_column(ForeignKey("flags.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[str] = mapped_column(String(128))
    actor_name: Mapped[str] = mapped_column(String(256), default="")
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    why: Mapped[str] = mapped_column(Text, default="")
    facts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


@event.listens_for(Session, "before_flush")
def _history_is_append_only(session: Session, _context: object, _instances: object) -> None:
    # The database refuses too (triggers in the migration); this names the mistake earlier.
    for row in list(session.dirty) + list(session.deleted):
        if isinstance(row, FlagEvent) and (row in session.deleted or session.is_modified(row)):
            raise HistoryIsImmutable(f"flag history record {row.id} cannot be changed")


class PanelDecision(Confidential, Base):
    """One panel member's decision in a case review, with the assessment they recorded."""

    __tablename__ = "panel_decisions"
    __encrypted__ = ("severity", "frequency", "proportionality", "reasonable_adjustments")
    __table_args__ = (
        # One decision per role and one role per person: three distinct people, enforced twice.
        UniqueConstraint("flag_id", "role", name="uq_panel_decisions_flag_role"),
        UniqueConstraint("flag_id", "decided_by", name="uq_panel_decisions_flag_person"),
    )

    flag_id: Mapped[str] = mapped_column(ForeignKey("flags.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    decision: Mapped[str] = mapped_column(String(16))
    decided_by: Mapped[str] = mapped_column(String(128))
    decided_by_name: Mapped[str] = mapped_column(String(256), default="")
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The assessment in the member's words: sealed, shown only under the details rule.
    severity: Mapped[str | None] = mapped_column(Text)
    frequency: Mapped[str | None] = mapped_column(Text)
    proportionality: Mapped[str | None] = mapped_column(Text)
    reasonable_adjustments: Mapped[str | None] = mapped_column(Text)


class Notice(Confidential, Base):
    """How the person was told of an active flag: a letter, or a recorded exception."""

    __tablename__ = "flag_notices"
    __encrypted__ = ("withheld_reason", "recipient_name", "recipient_address")
    # The open appeal windows: notices given in the last window's days, in closing order.
    __table_args__ = (Index("ix_flag_notices_issued_at_flag", "issued_at", "flag_id"),)

    flag_id: Mapped[str] = mapped_column(ForeignKey("flags.id"), unique=True)
    method: Mapped[str] = mapped_column(String(16))
    issued_by: Mapped[str] = mapped_column(String(128))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    legal_guidance_ref: Mapped[str | None] = mapped_column(String(256))
    director_permission_by: Mapped[str | None] = mapped_column(String(128))
    withheld_reason: Mapped[str | None] = mapped_column(Text)
    recipient_name: Mapped[str | None] = mapped_column(Text)
    recipient_address: Mapped[str | None] = mapped_column(Text)
    # The Senior Manager handling the case when the letter went out (the panel's), whom the
    # letter and, through the appeal window, the banner may name (Eastleigh 30).
    handling_manager: Mapped[str | None] = mapped_column(String(128))
    handling_manager_name: Mapped[str] = mapped_column(String(256), default="")


class WithholdingGuidance(Confidential, Base):
    """The Head of Legal's guidance to withhold a flag's decision letter, awaiting (or given)
    a Service Director's permission; the notice is recorded only once they give it."""

    __tablename__ = "flag_withholding_guidance"
    __encrypted__ = ("reason",)

    flag_id: Mapped[str] = mapped_column(ForeignKey("flags.id"), unique=True)
    legal_guidance_ref: Mapped[str] = mapped_column(String(256))
    reason: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(128))
    recorded_by_name: Mapped[str] = mapped_column(String(256), default="")
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A Service Director's refusal of permission: the letter must then be sent, unless the
    # Head of Legal records new guidance (which clears the refusal). The reason is read by
    # everyone who may read the flag's record, as its history shows it.
    refused_by: Mapped[str | None] = mapped_column(String(128))
    refused_by_name: Mapped[str | None] = mapped_column(String(256))
    refused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refusal_reason: Mapped[str | None] = mapped_column(Text)


class Letter(Confidential, Base):
    """A letter sent about a flag, as rendered; numbered from 1 per flag."""

    __tablename__ = "flag_letters"
    __encrypted__ = ("body",)
    __table_args__ = (UniqueConstraint("flag_id", "n", name="uq_flag_letters_flag_n"),)

    flag_id: Mapped[str] = mapped_column(ForeignKey("flags.id"), index=True)
    n: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128))
    signed_by: Mapped[str] = mapped_column(String(128))
    signed_by_name: Mapped[str] = mapped_column(String(256), default="")
    body: Mapped[str | None] = mapped_column(Text)


class Appeal(Confidential, Base):
    """An appeal against a flag, pending until an uninvolved Service Director decides it."""

    __tablename__ = "flag_appeals"
    __encrypted__ = ("grounds", "reasons")
    # The console's open appeals: pending ones, the earliest received first.
    __table_args__ = (Index("ix_flag_appeals_outcome_received", "outcome", "received_on"),)

    flag_id: Mapped[str] = mapped_column(ForeignKey("flags.id"), index=True)
    received_on: Mapped[date] = mapped_column(Date)
    lodged_by: Mapped[str] = mapped_column(String(128))
    lodged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    grounds: Mapped[str | None] = mapped_column(Text)
    # The Senior Manager handling it, from the staff directory; None until one is assigned.
    handling_manager: Mapped[str | None] = mapped_column(String(128))
    handling_manager_name: Mapped[str] = mapped_column(String(256), default="")
    outcome: Mapped[str | None] = mapped_column(String(16))
    reasons: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AppealDecision(Confidential, Base):
    """One decider's decision on an appeal; the appeal is decided once as many as the
    settings' `appeals.deciders_needed` agree on an outcome (by default one Service Director)."""

    __tablename__ = "appeal_decisions"
    __encrypted__ = ("reasons",)
    __table_args__ = (
        UniqueConstraint("appeal_id", "role", name="uq_appeal_decisions_appeal_role"),
        UniqueConstraint("appeal_id", "decided_by", name="uq_appeal_decisions_appeal_person"),
    )

    flag_id: Mapped[str] = mapped_column(ForeignKey("flags.id"), index=True)
    appeal_id: Mapped[str] = mapped_column(ForeignKey("flag_appeals.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))
    decided_by: Mapped[str] = mapped_column(String(128))
    decided_by_name: Mapped[str] = mapped_column(String(256), default="")
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reasons: Mapped[str | None] = mapped_column(Text)


class Review(Confidential, Base):
    """A periodic review of an active flag and its outcome."""

    __tablename__ = "flag_reviews"
    __encrypted__ = ("notes",)

    flag_id: Mapped[str] = mapped_column(ForeignKey("flags.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    reviewed_by: Mapped[str] = mapped_column(String(128))
    reviewed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    was_due: Mapped[date | None] = mapped_column(Date)
    next_review_due: Mapped[date | None] = mapped_column(Date)
    notes: Mapped[str | None] = mapped_column(Text)
    # The assignment that named the reviewer; None only on reviews recorded before
    # reviews were assigned, which give no access to the case.
    assignment_id: Mapped[str | None] = mapped_column(ForeignKey("review_assignments.id"))
    # Everyone who took part: each assigned reviewer and whoever the recommendations were
    # agreed with, as {"id", "name", "roles", "part": "reviewer" | "agreed_with"}.
    parties: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)


class ReviewAssignment(Entity, Base):
    """One reviewer named for a flag's next review by the Customer Support Manager.

    Open (`ended_at` None) until a review is recorded or a new assignment replaces it; only
    a reviewer an open assignment names may record the review.
    """

    __tablename__ = "review_assignments"

    flag_id: Mapped[str] = mapped_column(ForeignKey("flags.id"), index=True)
    reviewer: Mapped[str] = mapped_column(String(128))
    assigned_by: Mapped[str] = mapped_column(String(128))
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class FlagIncident(Base):
    """An incident a flag proposal relies on."""

    __tablename__ = "flag_incidents"

    flag_id: Mapped[str] = mapped_column(ForeignKey("flags.id"), primary_key=True)
    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incidents.id"), primary_key=True, index=True
    )


class StaffMember(Base):
    """A member of staff as last seen at sign-in or when acting: names for letters and banners.

    Roles come from the identity provider; this remembers the roles seen most recently,
    so a named Service Director can be checked to hold that role.
    """

    __tablename__ = "staff"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(256), default="")
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


__all__ = [
    "Appeal",
    "AppealDecision",
    "FlagEvent",
    "FlagIncident",
    "HistoryIsImmutable",
    "Letter",
    "Notice",
    "PanelDecision",
    "Review",
    "ReviewAssignment",
    "StaffMember",
    "WithholdingGuidance",
]


class ContactDecision(Confidential, Base):
    """A dated decision on how the council handles a person's contact, with who decided it.

    Eastleigh's records for persistent complainers (not putting a further complaint on the
    same matter through the procedure, not answering further correspondence on it, a single
    point of contact) and exceptions to the policy once a flag is applied. The matter and the
    reasons are sealed like a flag's; the kind, the dates, who decided and the named contact
    are what staff act on.
    """

    __tablename__ = "contact_decisions"
    __encrypted__ = ("matter", "reason", "lift_reason")

    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    flag_id: Mapped[str | None] = mapped_column(ForeignKey("flags.id"))
    matter: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    contact: Mapped[str] = mapped_column(String(256), default="")
    decided_by: Mapped[str] = mapped_column(String(128))
    decided_on: Mapped[date] = mapped_column(Date)
    recorded_by: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lifted_on: Mapped[date | None] = mapped_column(Date)
    lifted_by: Mapped[str | None] = mapped_column(String(128))
    lift_reason: Mapped[str | None] = mapped_column(Text)
