"""Identity tables: launch-token ids already used, so a token signs in once across instances."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import String, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from sidecar.storage.database import Base, Database, UTCDateTime, utcnow


class UsedLaunchToken(Base):
    """The `jti` of a launch token that has signed someone in, kept until the token expires."""

    __tablename__ = "used_launch_tokens"

    # SHA-256 of the jti: a fixed width whatever the CRM host sends.
    jti_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


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
