"""Who took part in a flag's case, and how: for the uninvolved-director rule and for access."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from sidecar.lifecycle_models import Appeal, Notice, PanelDecision, Review
from sidecar.models import Flag


def involvement(session: Session, flag: Flag) -> dict[str, set[str]]:
    """Map each involved user id to the relations they have to the flag's case.

    The relations are those named in `sidecar.access.RELATIONSHIPS`.
    """
    found: dict[str, set[str]] = {}

    def add(user_id: str | None, relation: str) -> None:
        if user_id:
            found.setdefault(user_id, set()).add(relation)

    add(flag.proposed_by, "proposer")
    add(flag.responsible_manager, "responsible_manager")
    for member in session.scalars(
        select(PanelDecision.decided_by).where(PanelDecision.flag_id == flag.id)
    ):
        add(member, "panel_member")
    for manager, director in session.execute(
        select(Appeal.handling_manager, Appeal.decided_by).where(Appeal.flag_id == flag.id)
    ):
        add(manager, "handling_senior_manager")
        add(director, "deciding_director")
    for director, issuer in session.execute(
        select(Notice.director_permission_by, Notice.issued_by).where(Notice.flag_id == flag.id)
    ):
        add(director, "withheld_permission")
        add(issuer, "notice_issuer")
    for reviewer in session.scalars(select(Review.reviewed_by).where(Review.flag_id == flag.id)):
        add(reviewer, "reviewer")
    return found


def is_involved(session: Session, flag: Flag, user_id: str) -> bool:
    """True when the user has any relationship to the flag's case."""
    return user_id in involvement(session, flag)
