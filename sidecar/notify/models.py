"""The notifications outbox: one row per event a member of staff is told of."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sidecar.storage.database import Base, Entity, UTCDateTime, utcnow


class Notification(Entity, Base):
    """An event one member of staff is told of, and how its delivery went.

    Written in the transaction that records the event, so a committed event is never lost
    on its way to the person. Rows sharing a `message_key` (a digest period's) go out as one
    message. `facts` hold what the message names (a flag's reference, who and when, a reason
    code): never a confidential text, which stays behind the console link.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_due", "state", "next_attempt_at"),
        Index("ix_notifications_created", "created_at"),
    )

    kind: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(128))
    facts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The console page the message links to, relative to the console's base URL.
    link: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Rows with one key are sent as one message (a digest); None: the row is its own message.
    message_key: Mapped[str | None] = mapped_column(String(256))
    # A time-based event's identity (a review's due date, an appeal window's last day), so a
    # scan run twice never tells anyone twice.
    dedupe_key: Mapped[str | None] = mapped_column(String(256), unique=True)
    # pending | retrying | sent | dead (gave up after max attempts, or a permanent refusal)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The delivery service's id of the message (GOV.UK Notify's notification id).
    provider_ref: Mapped[str | None] = mapped_column(String(128))
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
