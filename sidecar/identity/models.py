"""Identity tables: used launch-token ids, sign-in sessions, and refused sign-ins to count."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from sidecar.storage.database import Base, Database, UTCDateTime, utcnow


class UsedLaunchToken(Base):
    """The `jti` of a launch token that has signed someone in, kept until the token expires."""

    __tablename__ = "used_launch_tokens"

    # SHA-256 of the jti: a fixed width whatever the CRM host sends.
    jti_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class StaffSession(Base):
    """One sign-in's session, so it can be ended server-side wherever its cookie or tokens go.

    Kept until its absolute expiry, ended or not: a cookie older than that is refused anyway.
    """

    __tablename__ = "staff_sessions"

    # SHA-256 of the session id the cookie and access tokens carry: the table alone opens none.
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), index=True)
    via: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # "logout", or the id of whoever ended it for the user.
    ended_by: Mapped[str | None] = mapped_column(String(128))
    # The provider's ID token, for RP-initiated logout's id_token_hint; cleared at the end.
    id_token: Mapped[str | None] = mapped_column(Text)


class SignInRefusal(Base):
    """A refused sign-in, kept a day or two so patterns (many for one account) raise alerts.

    The audit trail holds the refusal itself; this only counts, by account or address.
    """

    __tablename__ = "sign_in_refusals"
    __table_args__ = (
        Index("ix_sign_in_refusals_account", "account", "at"),
        Index("ix_sign_in_refusals_address", "address", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # The account the refused credential verifiably named, or None when it named none.
    account: Mapped[str | None] = mapped_column(String(128))
    address: Mapped[str | None] = mapped_column(String(64))


def claim_launch_token(database: Database, jti: str, expires_at: datetime) -> bool:
    """Record the jti as used; False when it was used before (a replay).

    The primary key makes the check atomic in the database, so two instances receiving
    the same token at once cannot both accept it. Expired rows are pruned on the way:
    a token past its expiry is refused by its `exp` anyway.
    """
    digest = hashlib.sha256(jti.encode("utf-8")).hexdigest()
    try:
        with database.transaction() as session:
            session.execute(delete(UsedLaunchToken).where(UsedLaunchToken.expires_at < utcnow()))
            session.add(UsedLaunchToken(jti_hash=digest, expires_at=expires_at))
    except IntegrityError:
        return False
    return True
