"""The decision log of a customer or property: decisions on their contact, and exceptions."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from sidecar.api.cases import bp
from sidecar.api.endpoint import Input, endpoint
from sidecar.api.inputs import Day
from sidecar.api.responses import created, json_response
from sidecar.api.service_call import service_call
from sidecar.audit import writer as audit
from sidecar.lookup.service import check_subject
from sidecar.register import decisions


class DecisionBody(Input):
    kind: str = Field(
        min_length=1,
        max_length=64,
        description="a code of catalogue.contact_decisions, e.g. no_further_complaints",
    )
    matter: str = Field(
        "", max_length=2000, description="the matter the decision is about (confidential)"
    )
    reason: str = Field(min_length=1, max_length=20000, description="why (confidential)")
    decided_by: str = Field(
        min_length=1, max_length=128, description="user id of who decided, in the directory"
    )
    decided_on: Day
    contact: str = Field(
        "", max_length=256, description="the single point of contact, for that kind"
    )
    flag_id: str | None = Field(
        None, max_length=32, description="the applied flag an exception is made to"
    )


class LiftBody(Input):
    reason: str = Field(min_length=1, max_length=20000, description="why it no longer applies")
    decided_by: str = Field(min_length=1, max_length=128)
    lifted_on: Day


@endpoint(
    bp,
    "/subjects/<kind>/<ref>/decisions",
    methods=["POST"],
    action="decision.record",
    body=DecisionBody,
    summary="Record a decision on the subject's contact (a persistent complainer's complaints "
    "or correspondence, a single point of contact) or an exception to an applied flag",
    tags=["case management"],
    responses={201: "Recorded", 422: "Unknown kind, missing matter, contact or flag"},
)
def record_decision(kind: str, ref: str, body: DecisionBody) -> Any:
    ref = check_subject(kind, ref)
    entry = decisions.DecisionRecord(
        kind=body.kind,
        subject_kind=kind,
        subject_ref=ref,
        matter=body.matter,
        reason=body.reason,
        decided_by=body.decided_by,
        decided_on=body.decided_on,
        contact=body.contact,
        flag_id=body.flag_id,
    )
    with service_call("decision.record", subject_kind=kind, subject_ref=ref) as ctx:
        decision = decisions.record(ctx, entry)
        return created({"id": decision.id, "kind": decision.kind})


@endpoint(
    bp,
    "/subjects/<kind>/<ref>/decisions",
    action="decision.read",
    summary="The subject's decision log, newest first; the matter and reasons only with a "
    "business need (a grant for the subject, or a part in the decisions); audited",
    tags=["case management"],
    confidential=True,
)
def decision_log(kind: str, ref: str) -> Any:
    ref = check_subject(kind, ref)
    with service_call("decision.read", subject_kind=kind, subject_ref=ref) as ctx:
        rows, may_read = decisions.log_of(ctx, kind, ref)
        names = decisions.directory_names(ctx, rows)
    # Committed before anything is unsealed: a log whose reading cannot be recorded shows nothing.
    audit.record(
        audit.AuditEvent(
            action="decision.read",
            subject_kind=kind,
            subject_ref=ref,
            outcome_reason=f"decision log with reasons ({may_read.basis})"
            if may_read.allowed
            else "decision log without reasons",
        )
    )
    body = [decisions.entry_json(ctx, row, names, reasons=may_read.allowed) for row in rows]
    return json_response(
        {
            "subject": {"kind": kind, "ref": ref},
            "reasons_shown": may_read.allowed,
            "decisions": body,
        }
    )


@endpoint(
    bp,
    "/decisions/<decision_id>/lift",
    methods=["POST"],
    action="decision.record",
    body=LiftBody,
    summary="Record that a decision no longer applies; it stays in the log with its lifting",
    tags=["case management"],
    responses={200: "Lifted", 404: "No such decision", 409: "Already lifted"},
)
def lift_decision(decision_id: str, body: LiftBody) -> Any:
    with service_call("decision.record") as ctx:
        decision = decisions.lift(ctx, decision_id, body.reason, body.decided_by, body.lifted_on)
        return json_response({"id": decision.id, "lifted_on": decision.lifted_on.isoformat()})
