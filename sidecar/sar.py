"""Subject access request exports: what Forewarn holds about one subject, section by section."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sidecar.audit_models import AuditEntry
from sidecar.db import utcnow
from sidecar.settings import Settings


@dataclass(frozen=True)
class SarScope:
    """The subject asked about, and the settings that shape the answer."""

    kind: str
    ref: str
    settings: Settings


@dataclass(frozen=True)
class Section:
    """One part of the export: a key in the response and the function that fills it."""

    name: str
    collect: Callable[[Session, SarScope], list[dict[str, Any]]]


def access_events(session: Session, scope: SarScope) -> list[dict[str, Any]]:
    """Every recorded access to the subject's record: when, what, why, and by whom.

    Staff are named only when `audit.sar_include_staff_identities` is set; their roles
    are always given, so the person learns what kind of officer looked.
    """
    include_staff = scope.settings.audit.sar_include_staff_identities
    rows = session.execute(
        select(AuditEntry)
        .where(AuditEntry.subject_kind == scope.kind, AuditEntry.subject_ref == scope.ref)
        .order_by(AuditEntry.seq)
    ).scalars()
    events = []
    for entry in rows:
        roles = [role for role in (entry.actor_roles or "").split(",") if role]
        staff: dict[str, Any] = {"roles": roles}
        if include_staff:
            staff |= {"id": entry.actor_id, "name": entry.actor_name}
        purpose = None
        if entry.purpose_code or entry.purpose_text:
            purpose = {
                "code": entry.purpose_code,
                "label": scope.settings.label("reason_codes", entry.purpose_code or ""),
                "text": entry.purpose_text,
            }
        events.append(
            {
                "at": entry.at.isoformat(),
                "action": entry.action,
                "outcome": entry.outcome,
                "flag_id": entry.flag_id,
                "purpose": purpose,
                "staff": staff,
                "via": entry.via,
            }
        )
    return events


SECTIONS: list[Section] = [Section("access_events", access_events)]
"""The export's parts, in order. The register's flags and decisions are added here."""


def build(session: Session, scope: SarScope) -> dict[str, Any]:
    """The whole export: the subject, when it was made, and every section."""
    return {
        "subject": {"kind": scope.kind, "ref": scope.ref},
        "generated_at": utcnow().isoformat(),
        "staff_identities": (
            "included" if scope.settings.audit.sar_include_staff_identities else "withheld"
        ),
        "sections": [section.name for section in SECTIONS],
        **{section.name: section.collect(session, scope) for section in SECTIONS},
    }
