"""The audit writer: every access and decision appended to a hash chain, durably, fail-closed."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from flask import current_app, has_request_context, request
from flask_login import current_user
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from sidecar.audit_models import AuditEntry, AuditHead
from sidecar.db import utcnow
from sidecar.errors import Problem

GENESIS = "0" * 64
HASH_DOMAIN = b"forewarn.audit.entry.v1\x00"

CHAINED_FIELDS = (
    "seq",
    "at",
    "actor_id",
    "actor_name",
    "actor_roles",
    "action",
    "subject_kind",
    "subject_ref",
    "flag_id",
    "outcome",
    "outcome_reason",
    "purpose_code",
    "purpose_text",
    "client_ip",
    "user_agent",
    "via",
    "prev_hash",
)


class AuditUnavailable(Problem):
    """The trail cannot be written, so the request must not proceed (fail closed)."""

    def __init__(self, detail: str) -> None:
        super().__init__(503, "audit-unavailable", detail)


@dataclass(frozen=True)
class AuditEvent:
    """What happened; who and from where are filled in from the request when not given."""

    action: str
    outcome: str = "allowed"
    outcome_reason: str | None = None
    subject_kind: str | None = None
    subject_ref: str | None = None
    flag_id: str | None = None
    purpose_code: str | None = None
    purpose_text: str | None = None
    actor_id: str | None = None
    actor_name: str | None = None
    actor_roles: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None
    via: str | None = None


def entry_hash(fields: dict[str, Any]) -> str:
    """SHA-256 over a canonical JSON encoding of the chained fields, domain-separated."""
    canonical = {
        name: (value.isoformat() if isinstance(value, datetime) else value)
        for name, value in fields.items()
        if name in CHAINED_FIELDS
    }
    encoded = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(HASH_DOMAIN + encoded.encode("utf-8")).hexdigest()


def _with_context(event: AuditEvent) -> dict[str, Any]:
    fields = asdict(event)
    if has_request_context():
        if fields["actor_id"] is None and current_user.is_authenticated:
            fields["actor_id"] = current_user.id
            fields["actor_name"] = current_user.name
            fields["actor_roles"] = ",".join(current_user.roles)
        fields["client_ip"] = fields["client_ip"] or request.remote_addr
        fields["user_agent"] = fields["user_agent"] or (request.user_agent.string or None)
        if fields["via"] is None:
            fields["via"] = getattr(current_user, "via", None) or "api"
    return fields


def append(session: Session, event: AuditEvent) -> AuditEntry:
    """Add an entry inside the caller's transaction (atomic with a decision it records)."""
    fields = _with_context(event)
    # Updating the single head row takes its lock (row lock on PostgreSQL, the write
    # lock on SQLite) before the previous hash is read, so concurrent writers queue.
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1))
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    fields.update(seq=head.seq, at=utcnow(), prev_hash=head.entry_hash)
    fields["entry_hash"] = entry_hash(fields)
    entry = AuditEntry(**fields)
    session.add(entry)
    head.entry_hash = fields["entry_hash"]
    session.flush()
    return entry


def record(event: AuditEvent) -> AuditEntry:
    """Append and commit durably before returning; raise AuditUnavailable (503) if it cannot."""
    database = current_app.extensions["forewarn"].database
    try:
        with database.transaction() as session:
            entry = append(session, event)
    except SQLAlchemyError as exc:
        current_app.extensions["forewarn"].metrics.audit_write_failures.inc()
        current_app.logger.error("audit write failed: %s", exc.__class__.__name__)
        raise AuditUnavailable(
            "the access could not be recorded, so nothing was disclosed; try again later"
        ) from None
    return entry


def record_denied(action: str, basis: str, **subject: Any) -> None:
    """Record a refused attempt; a refusal that cannot be recorded is still a refusal."""
    record(AuditEvent(action=action, outcome="denied", outcome_reason=basis[:256], **subject))
