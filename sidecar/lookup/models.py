"""The lookup's tables: access grants that open a subject's details, and privacy alerts."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sidecar.storage.database import Base, Entity, UTCDateTime, utcnow


class AccessGrant(Entity, Base):
    """One user's recorded business need to read one subject's flag details, until it expires."""

    __tablename__ = "access_grants"
    __table_args__ = (
        Index("ix_access_grants_holder", "user_id", "subject_kind", "subject_ref", "expires_at"),
        Index("ix_access_grants_made", "user_id", "created_at"),
    )

    user_id: Mapped[str] = mapped_column(String(128))
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_ref: Mapped[str] = mapped_column(String(64))
    reason_code: Mapped[str] = mapped_column(String(64))
    reason_text: Mapped[str] = mapped_column(Text)
    visit_date: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PrivacyAlert(Entity, Base):
    """A pattern of access an auditor should look at: many grants, reason 'other', another team."""

    __tablename__ = "privacy_alerts"
    # The open alerts (closed_at is null), oldest first: the privacy officer's queue.
    __table_args__ = (Index("ix_privacy_alerts_open", "closed_at", "raised_at"),)

    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(128), index=True)
    subject_kind: Mapped[str | None] = mapped_column(String(16))
    subject_ref: Mapped[str | None] = mapped_column(String(64))
    flag_id: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(512))
    # Set once, when a privacy officer has looked into the alert and closes it with a note.
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(128))
    close_note: Mapped[str | None] = mapped_column(Text)
