"""The register's tables: subjects, the links between them, incidents and flags."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sidecar.storage.database import Base, Confidential, Entity, UTCDateTime, utcnow


class Subject(Entity, Base):
    """A customer (CRM contact reference) or a property (UPRN) that flags and incidents name."""

    __tablename__ = "subjects"
    __table_args__ = (UniqueConstraint("kind", "ref", name="uq_subjects_kind_ref"),)

    kind: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Bumped on every change to the subject's flags, so connectors never apply an older status.
    status_version: Mapped[int] = mapped_column(Integer, default=0)

    flags: Mapped[list[Flag]] = relationship(back_populates="subject")


class SubjectLink(Base):
    """A customer linked to a property: a property's banner also shows the customer's flags."""

    __tablename__ = "subject_links"

    customer_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"), primary_key=True)
    property_id: Mapped[str] = mapped_column(
        ForeignKey("subjects.id"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Incident(Confidential, Base):
    """An entry in the staff warning register."""

    __tablename__ = "incidents"
    __encrypted__ = ("narrative", "triage_notes", "triage_reference", "reporter_name")
    __table_args__ = (
        # The console's triage queue (untriaged, oldest first) and a subject's incidents.
        Index("ix_incidents_triage_recorded", "triage", "recorded_at"),
        Index("ix_incidents_subject_occurred", "subject_id", "occurred_at"),
    )

    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"), index=True)
    reported_by: Mapped[str] = mapped_column(String(128))
    # Who it happened to: "staff" (the recorder), or a "councillor" or "contractor" whose name
    # the recorder gives, sealed (rules.PEOPLE_KINDS). None on incidents before: staff.
    reporter_kind: Mapped[str | None] = mapped_column(String(16))
    reporter_name: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    channel: Mapped[str] = mapped_column(String(32))
    behaviour_types: Mapped[list[str]] = mapped_column(JSON)
    narrative: Mapped[str | None] = mapped_column(Text)
    warning_given: Mapped[bool] = mapped_column(Boolean, default=False)
    # [{"system": "b_safe", "ref": "BS-2026-114"}]: the incident in the council's other systems.
    external_references: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    triage: Mapped[str | None] = mapped_column(String(32))
    triage_by: Mapped[str | None] = mapped_column(String(128))
    triage_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    triage_considerations: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The manager's considerations in words (they may name a disability), sealed.
    triage_notes: Mapped[str | None] = mapped_column(Text)
    # The police's crime number or the legal case's number, for those outcomes (sealed).
    triage_reference: Mapped[str | None] = mapped_column(Text)


class ReferenceCounter(Base):
    """The last flag reference given out in each year, so references run 0001, 0002, ..."""

    __tablename__ = "flag_reference_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Flag(Confidential, Base):
    """A caution flag on a subject, from proposal to its end.

    Status fields (level, categories, restrictions, handling, dates) may reach the CRM;
    the encrypted ones never leave Forewarn except to a user with a business need.
    """

    __tablename__ = "flags"
    __encrypted__ = (
        "reason",
        "control_measures",
        "reasonable_adjustments",
        "no_warning_reason",
        "withdrawal_reason",
        "protected_people",
    )
    __table_args__ = (
        Index("ix_flags_subject_state", "subject_id", "state"),
        # The console's panel queue: proposals, oldest first.
        Index("ix_flags_state_proposed", "state", "proposed_at"),
        # The home page's flags awaiting a notice: active, not yet told, longest waiting first.
        Index("ix_flags_state_notice", "state", "notice_at", "activated_at"),
        # Reviews due: active flags by review date.
        Index("ix_flags_state_review_due", "state", "review_due"),
        Index("uq_flags_reference", "reference", unique=True),
    )

    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"))
    # The reference letters carry and a person can read out on the phone: FW-2026-0042.
    reference: Mapped[str | None] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    level: Mapped[str] = mapped_column(String(8))
    categories: Mapped[list[str]] = mapped_column(JSON)
    # [{"code": "time_limited_calls", "note": "10 minutes", "ends_on": "2027-05-01"|null}]
    restrictions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    handling: Mapped[str] = mapped_column(Text, default="")
    # Instructions every reader of the banner applies, e.g. "Contact by letter in large print".
    adjustments: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Whom the flag protects, of rules.PEOPLE_KINDS (None on flags before: staff), and the
    # particular councillors or contractors by name, sealed.
    protects: Mapped[list[str] | None] = mapped_column(JSON)
    protected_people: Mapped[str | None] = mapped_column(Text)
    # Whether the person was warned before the flag: when, or (sealed) why not.
    warning_given_on: Mapped[date | None] = mapped_column(Date)
    no_warning_reason: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    control_measures: Mapped[str | None] = mapped_column(Text)
    reasonable_adjustments: Mapped[str | None] = mapped_column(Text)
    # Why it was withdrawn: sealed, so the history says only that it was.
    withdrawal_reason: Mapped[str | None] = mapped_column(Text)
    responsible_manager: Mapped[str] = mapped_column(String(128))
    review_months: Mapped[int] = mapped_column(Integer)
    review_due: Mapped[date | None] = mapped_column(Date, index=True)
    # A time-limited flag expires on this date (None: until a review or appeal removes it).
    ends_on: Mapped[date | None] = mapped_column(Date, index=True)
    provenance: Mapped[str] = mapped_column(String(16), default="register")
    proposed_by: Mapped[str] = mapped_column(String(128))
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the person was told of the flag by letter, or the council recorded the exception
    # that withholds it (the notice's issued_at); None while the notice is awaited.
    notice_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    subject: Mapped[Subject] = relationship(back_populates="flags")
