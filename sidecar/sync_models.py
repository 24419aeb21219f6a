"""The sync outbox: status changes waiting to reach each connector, and per-subject claims."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sidecar.db import Base, UTCDateTime, utcnow

ID = BigInteger().with_variant(Integer, "sqlite")


class OutboxEntry(Base):
    """One status version for one connector, written in the transaction that changed it."""

    __tablename__ = "sync_outbox"
    __table_args__ = (
        Index("ix_sync_outbox_due", "connector", "state", "next_attempt_at"),
        Index("ix_sync_outbox_subject", "connector", "subject_id", "version"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    connector: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"))
    version: Mapped[int] = mapped_column(Integer)
    # The non-confidential status document (connectors.base.FlagStatus.as_document()).
    status: Mapped[dict[str, Any]] = mapped_column(JSON)
    # pending -> delivered | superseded (a newer version exists) | not_found | dead
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SyncClaim(Base):
    """A worker's exclusive claim on one subject for one connector, so versions never race."""

    __tablename__ = "sync_claims"

    connector: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    worker: Mapped[str] = mapped_column(String(128))
    until: Mapped[datetime] = mapped_column(UTCDateTime)


class SyncCursor(Base):
    """The newest version each connector has delivered for a subject; older ones never go."""

    __tablename__ = "sync_cursors"

    connector: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    delivered_version: Mapped[int] = mapped_column(Integer)
    delivered_at: Mapped[datetime] = mapped_column(UTCDateTime)
