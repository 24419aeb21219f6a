"""The sync outbox: status changes waiting to reach the CRMs, and each connector's progress."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sidecar.storage.database import Base, UTCDateTime, utcnow

ID = BigInteger().with_variant(Integer, "sqlite")


class StatusChange(Base):
    """A subject's status reached `version`; written in the transaction that changed it.

    One row serves every connector: each connector's cursor says how far it has got, so a
    committed change cannot be lost on its way to any CRM, including one added later. A
    reconciliation writes one again when it may have overwritten that version in a CRM.
    """

    __tablename__ = "sync_status_changes"
    __table_args__ = (Index("ix_sync_status_changes_subject", "subject_id", "version"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SyncCursor(Base):
    """How far one connector has got with one subject, and how its last attempt went."""

    __tablename__ = "sync_cursors"
    __table_args__ = (Index("ix_sync_cursors_state", "connector", "state", "next_attempt_at"),)

    connector: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Version the CRM holds as far as we know: the newest it acknowledged, or an older one
    # a reconciliation sent over it (the subject is then due again). The worker always
    # sends the current status, so never an older version than this one.
    delivered_version: Mapped[int] = mapped_column(Integer, default=-1)
    # Version of the last attempt: a dead letter is retried when a newer change comes.
    attempted_version: Mapped[int] = mapped_column(Integer, default=-1)
    # ok | retrying | dead (gave up after max attempts or a permanent error) | not_found
    state: Mapped[str] = mapped_column(String(16), default="ok")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SyncClaim(Base):
    """A worker's exclusive claim on one subject for one connector, so versions never race."""

    __tablename__ = "sync_claims"

    connector: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    worker: Mapped[str] = mapped_column(String(128))
    until: Mapped[datetime] = mapped_column(UTCDateTime)


class ReconcileRun(Base):
    """The last full reconciliation of one connector and what it did."""

    __tablename__ = "sync_reconcile_runs"

    connector: Mapped[str] = mapped_column(String(64), primary_key=True)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered: Mapped[int] = mapped_column(Integer)
    not_found: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    requests: Mapped[int] = mapped_column(Integer)


class CrmRecordId(Base):
    """The CRM's own Id of a subject's record, as a connector found it (Salesforce's Id).

    Found once by the subject's reference, it lets later writes go straight to the record;
    a connector that finds it stale (the record deleted or merged) drops it and looks again.
    """

    __tablename__ = "sync_record_ids"

    connector: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64))
    learned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
