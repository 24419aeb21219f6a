"""Subject access: what Forewarn holds about one subject, section by section, in two forms.

The access report (`report`) is for auditors: the subject's flags and decisions without a
confidential field, the incidents without narratives or considerations, and every access
with who, when and why. The subject access export (`build`) is the person's own copy, with
the confidential content, made by a privacy officer for one request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sidecar.audit.models import AuditEntry
from sidecar.register import incidents, records, subjects
from sidecar.register.models import Flag, Incident
from sidecar.settings import Settings
from sidecar.storage.crypto import KeyRing, SalvagingRing
from sidecar.storage.database import utcnow


@dataclass(frozen=True)
class SarScope:
    """The subject asked about, the settings that shape the answer, and the key ring.

    `for_auditor` makes the access report: staff named, nothing confidential opened.
    """

    kind: str
    ref: str
    settings: Settings
    keyring: KeyRing | SalvagingRing
    for_auditor: bool = False

    @property
    def names_staff(self) -> bool:
        return self.for_auditor or self.settings.audit.sar_include_staff_identities


@dataclass(frozen=True)
class Section:
    """One part of the export: a key in the response and the function that fills it."""

    name: str
    collect: Callable[[Session, SarScope], list[dict[str, Any]]]


def access_events(session: Session, scope: SarScope) -> list[dict[str, Any]]:
    """Every recorded access to the subject's record: when, what, why, and by whom.

    In the person's copy staff are named only when `audit.sar_include_staff_identities` is
    set; their roles are always given, so the person learns what kind of officer looked.
    """
    include_staff = scope.names_staff
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


STAFF_KEYS = frozenset(
    {"by", "actor", "responsible_manager", "handling_manager", "signatory", "signed_by"}
)


def _identities(value: Any, found: set[str], keyed: bool = False) -> None:
    """Collect every staff id and name that stands under a staff key, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            _identities(item, found, keyed or key in STAFF_KEYS or key.endswith("_by"))
    elif isinstance(value, list):
        for item in value:
            _identities(item, found, keyed)
    elif keyed and isinstance(value, str) and value:
        found.add(value)


def _scrub(value: Any, identities: list[str], keyed: bool = False) -> Any:
    if isinstance(value, dict):
        return {
            key: _scrub(item, identities, keyed or key in STAFF_KEYS or key.endswith("_by"))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_scrub(item, identities, keyed) for item in value]
    if isinstance(value, str):
        if keyed:
            return "withheld"
        for identity in identities:  # free text such as "signed by <name>"
            value = value.replace(identity, "withheld")
    return value


def _staff_per_config(scope: SarScope, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Staff ids and names replaced by "withheld", in fields and in free text, unless the
    council's config includes them (or the export is the auditor's)."""
    if scope.names_staff:
        return items
    found: set[str] = set()
    _identities(items, found)
    longest_first = sorted(found, key=len, reverse=True)
    return _scrub(items, longest_first)


def flags_held(session: Session, scope: SarScope) -> list[dict[str, Any]]:
    """Every flag on the subject, proposed or ended: terms, reasons, decisions, letters, history.

    Reasons and narratives are the person's own data, so the person's copy includes them; it
    is audited before it is built and goes to the privacy officer, who applies any
    exemption. The auditor's report has the record without them.
    """
    subject = subjects.find(session, scope.kind, scope.ref)
    if subject is None:
        return []
    now = utcnow()
    flags = session.scalars(
        select(Flag).where(Flag.subject_id == subject.id).order_by(Flag.proposed_at, Flag.id)
    )
    return _staff_per_config(
        scope,
        [
            records.flag_json(
                session,
                scope.settings,
                scope.keyring,
                flag,
                confidential=not scope.for_auditor,
                now=now,
            )
            for flag in flags
        ],
    )


def incidents_held(session: Session, scope: SarScope) -> list[dict[str, Any]]:
    """Every incident recorded about the subject in the staff warning register."""
    subject, found = incidents.incidents_of(session, scope.kind, scope.ref)
    if subject is None:
        return []
    if scope.for_auditor:
        return [_incident_summary(scope.settings, item) for item in found]
    return _staff_per_config(
        scope,
        [
            incidents.incident_json(scope.settings, scope.keyring, item, subject, confidential=True)
            for item in found
        ],
    )


def _incident_summary(settings: Settings, incident: Incident) -> dict[str, Any]:
    """An incident without its narrative or the manager's considerations."""
    return {
        "id": incident.id,
        "reported_by": incident.reported_by,
        "occurred_at": incident.occurred_at.isoformat(),
        "recorded_at": incident.recorded_at.isoformat(),
        "channel": incident.channel,
        "channel_label": settings.label("channels", incident.channel),
        "behaviour_types": list(incident.behaviour_types),
        "warning_given": incident.warning_given,
        "triage": None
        if incident.triage is None
        else {
            "outcome": incident.triage,
            "by": incident.triage_by,
            "at": incident.triage_at.isoformat() if incident.triage_at else None,
        },
    }


SECTIONS: list[Section] = [
    Section("flags", flags_held),
    Section("incidents", incidents_held),
    Section("access_events", access_events),
]
"""The export's parts, in order."""


def build(session: Session, scope: SarScope) -> dict[str, Any]:
    """The whole export: the subject, when it was made, and every section.

    A field that cannot be decrypted does not stop the export: it reads as damaged, and
    `damaged` lists each such cell (table.column and row) for the privacy officer.
    """
    ring = SalvagingRing(scope.keyring) if isinstance(scope.keyring, KeyRing) else scope.keyring
    scope = replace(scope, keyring=ring)
    sections = {section.name: section.collect(session, scope) for section in SECTIONS}
    return {
        "subject": {"kind": scope.kind, "ref": scope.ref},
        "generated_at": utcnow().isoformat(),
        "confidential_included": not scope.for_auditor,
        "staff_identities": "included" if scope.names_staff else "withheld",
        "sections": [section.name for section in SECTIONS],
        **sections,
        "damaged": ring.damaged,
    }
