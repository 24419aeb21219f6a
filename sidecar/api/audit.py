"""Audit endpoints: read and verify the trail, a subject's access report, subject access exports."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from flask import Blueprint
from pydantic import Field, field_validator

from sidecar.api.endpoint import Input, endpoint
from sidecar.api.inputs import canonical_ref
from sidecar.api.responses import json_response
from sidecar.audit import sar
from sidecar.audit import writer as audit
from sidecar.audit.trail import AuditFilter, page, parse_bound
from sidecar.audit.verify import verify_instance
from sidecar.errors import Problem
from sidecar.lookup.service import check_subject
from sidecar.runtime import current_runtime
from sidecar.storage.crypto import KeyRingError

bp = Blueprint("audit", __name__, url_prefix="/api/v1")

SUBJECT_KINDS = ("customer", "property")
DEFAULT_PAGE = 100
MAX_SEQ = 2**63 - 1
"""The largest sequence number an entry can have (a signed 64-bit column)."""


class AuditQuery(Input):
    kind: Literal["customer", "property"] | None = Field(None, description="subject kind")
    ref: str | None = Field(None, min_length=1, max_length=64, description="subject reference")
    actor: str | None = Field(None, min_length=1, max_length=128, description="staff user id")
    action: str | None = Field(None, min_length=1, max_length=64, description="e.g. sign_in")
    from_: datetime | None = Field(
        None, alias="from", description="YYYY-MM-DD or ISO 8601 date-time (inclusive)"
    )
    to: datetime | None = Field(
        None, description="YYYY-MM-DD (the whole day) or ISO 8601 date-time (exclusive)"
    )
    cursor: int | None = Field(
        None, ge=0, le=MAX_SEQ, description="next_cursor of the previous page"
    )
    limit: int | None = Field(None, ge=1, description="entries per page (capped by config)")

    _canonical_ref = field_validator("ref")(canonical_ref)

    @field_validator("from_", mode="before")
    @classmethod
    def _start(cls, value: Any) -> Any:
        return parse_bound(value, end=False) if isinstance(value, str) else value

    @field_validator("to", mode="before")
    @classmethod
    def _end(cls, value: Any) -> Any:
        return parse_bound(value, end=True) if isinstance(value, str) else value


@endpoint(
    bp,
    "/audit",
    action="audit.read",
    query=AuditQuery,
    confidential=True,
    tags=["audit"],
    summary="Audit entries matching the filters, oldest first, paged by cursor (audited)",
)
def list_entries(query: AuditQuery) -> Any:
    runtime = current_runtime()
    where = AuditFilter(query.kind, query.ref, query.actor, query.action, query.from_, query.to)
    limit = min(query.limit or DEFAULT_PAGE, runtime.settings.audit.page_size_max)
    with runtime.database.engine.connect() as connection:
        entries, next_cursor = page(connection, where, query.cursor, limit)
    # The read is recorded before anything read leaves (fail closed on 503).
    audit.record(
        audit.AuditEvent(
            action="audit.read",
            subject_kind=query.kind,
            subject_ref=query.ref,
            outcome_reason=f"{where.describe()}; {len(entries)} entries",
        )
    )
    return json_response(
        {"entries": entries, "next_cursor": None if next_cursor is None else str(next_cursor)}
    )


@endpoint(
    bp,
    "/audit/verify",
    action="audit.read",
    tags=["audit"],
    summary="Recompute the hash chain and check every signed checkpoint (audited)",
    responses={
        200: "The verdict: intact or the first bad entry, with checkpoints, cut and notes",
        503: "The signing keys to verify with cannot be read",
    },
)
def verify_trail() -> Any:
    runtime = current_runtime()
    try:
        verdict = verify_instance(
            runtime.database,
            runtime.settings.audit,
            runtime.audit_keys,
            runtime.settings.instance_dir,
        )
    except KeyRingError as exc:
        raise Problem(503, "keys-unavailable", f"the trail cannot be verified: {exc}") from None
    audit.record(
        audit.AuditEvent(
            action="audit.verify",
            outcome_reason=verdict.summary(),
        )
    )
    return json_response(verdict.as_json())


class SubjectAccessBody(Input):
    request_ref: str = Field(
        min_length=1,
        max_length=64,
        description="the council's reference of the subject access request being answered",
    )


@endpoint(
    bp,
    "/subjects/<kind>/<ref>/sar-export",
    action="audit.read",
    confidential=True,
    tags=["audit"],
    summary="The access report of a subject for auditors: flags, decisions, incidents and "
    "every access (who, when, why), with no confidential field (audited)",
)
def sar_export(kind: str, ref: str) -> Any:
    ref = check_subject(kind, ref)
    runtime = current_runtime()
    audit.record(
        audit.AuditEvent(action="audit.subject_export", subject_kind=kind, subject_ref=ref)
    )
    scope = sar.SarScope(kind, ref, runtime.settings, runtime.keyring, for_auditor=True)
    with runtime.database.transaction() as session:
        export = sar.build(session, scope)
    return json_response(export)


@endpoint(
    bp,
    "/subjects/<kind>/<ref>/subject-access-export",
    methods=["POST"],
    action="sar.export",
    body=SubjectAccessBody,
    confidential=True,
    tags=["audit"],
    summary="Everything held about a subject, confidential content included, to answer one "
    "subject access request (privacy officer; audited with the request reference first)",
    responses={200: "The export", 422: "No request reference"},
)
def subject_access_export(kind: str, ref: str, body: SubjectAccessBody) -> Any:
    ref = check_subject(kind, ref)
    runtime = current_runtime()
    audit.record(
        audit.AuditEvent(
            action="sar.export",
            subject_kind=kind,
            subject_ref=ref,
            purpose_code="subject_access_request",
            purpose_text=body.request_ref,
        )
    )
    scope = sar.SarScope(kind, ref, runtime.settings, runtime.keyring)
    with runtime.database.transaction() as session:
        export = sar.build(session, scope)
    return json_response({"request_ref": body.request_ref, **export})
