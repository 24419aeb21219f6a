"""Flag references a person can read out on the phone: FW-2026-0042, numbered within the year."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sidecar.register.models import Flag, ReferenceCounter

PREFIX = "FW"


def format_reference(year: int, number: int) -> str:
    return f"{PREFIX}-{year}-{number:04d}"


def _next_number(session: Session, year: int) -> int:
    """The year's next number; the counter row is locked until the transaction ends."""
    query = select(ReferenceCounter).where(ReferenceCounter.year == year).with_for_update()
    counter = session.scalars(query).first()
    if counter is None:
        try:
            with session.begin_nested():
                session.add(ReferenceCounter(year=year, last=0))
        except IntegrityError:
            pass  # another transaction gave out the year's first reference: use its row
        counter = session.scalars(query.execution_options(populate_existing=True)).one()
    counter.last += 1
    return counter.last


def ensure_reference(session: Session, flag: Flag) -> str:
    """The flag's reference, given it now (in its year of proposal) if it has none yet."""
    if flag.reference is None:
        year = flag.proposed_at.year
        flag.reference = format_reference(year, _next_number(session, year))
        session.flush()
    return flag.reference
