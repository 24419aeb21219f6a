"""The audit trail's tables: an append-only, hash-chained log of every access and decision."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from sidecar.storage.database import Base, UTCDateTime

SEQ = BigInteger().with_variant(Integer, "sqlite")


class AuditEntry(Base):
    """One recorded event. Never updated; `entry_hash` chains it to the one before."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_subject", "subject_kind", "subject_ref", "seq"),
        Index("ix_audit_actor", "actor_id", "seq"),
        # The access log pages by sequence within an action, and within the refusals (few
        # among many allowed reads, so their index costs allowed writes nothing).
        Index("ix_audit_action", "action", "seq"),
        Index(
            "ix_audit_denied",
            "seq",
            sqlite_where=text("outcome = 'denied'"),
            postgresql_where=text("outcome = 'denied'"),
        ),
    )

    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor_id: Mapped[str | None] = mapped_column(String(128))
    actor_name: Mapped[str | None] = mapped_column(String(256))
    actor_roles: Mapped[str | None] = mapped_column(String(512))
    action: Mapped[str] = mapped_column(String(64))
    subject_kind: Mapped[str | None] = mapped_column(String(16))
    subject_ref: Mapped[str | None] = mapped_column(String(64))
    flag_id: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))
    outcome_reason: Mapped[str | None] = mapped_column(String(256))
    purpose_code: Mapped[str | None] = mapped_column(String(64))
    purpose_text: Mapped[str | None] = mapped_column(Text)
    client_ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    via: Mapped[str | None] = mapped_column(String(16))
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's newest sequence number and hash, one row; updating it serializes writers."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(SEQ)
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """A signed statement "entry `seq` has hash `entry_hash`", made with the audit key.

    Kind "head" is taken every N entries or M seconds; kind "cut" records that every
    entry up to and including `seq` was removed under the retention policy.
    """

    __tablename__ = "audit_checkpoints"
    __table_args__ = (Index("ix_audit_checkpoints_kind_seq", "kind", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))
    seq: Mapped[int] = mapped_column(SEQ)
    entry_hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(String(256))
    key_id: Mapped[str] = mapped_column(String(32))
    signature: Mapped[str] = mapped_column(String(128))


class AuditReadiness(Base):
    """When each instance last proved, by a committed write beside the chain, that it can
    record: readiness commits here, never an entry, so the trail holds only real events."""

    __tablename__ = "audit_readiness"

    instance: Mapped[str] = mapped_column(String(128), primary_key=True)
    probed_at: Mapped[datetime] = mapped_column(UTCDateTime)
