"""Case management of the staff warning register: incidents and their triage."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from sidecar.api.cases import bp
from sidecar.api.endpoint import Input, endpoint
from sidecar.api.inputs import REF_FIELD, Moment, SubjectIn, canonical_ref
from sidecar.api.responses import created, json_response
from sidecar.api.service_call import service_call
from sidecar.audit import writer as audit
from sidecar.lookup.service import incident_access
from sidecar.register import incidents, subjects
from sidecar.runtime import current_runtime


class ExternalReferenceIn(Input):
    system: str = Field(
        min_length=1, max_length=64, description="a code of catalogue.external_references"
    )
    ref: str = Field(min_length=1, max_length=128)


class IncidentBody(Input):
    subject: SubjectIn
    occurred_at: Moment
    channel: str
    behaviour_types: list[str] = Field(min_length=1)
    narrative: str = Field(min_length=1, max_length=20000)
    # Strict: JSON true or false, never 0, 1 or "yes", which pydantic would otherwise take.
    warning_given: bool = Field(strict=True)
    external_references: list[ExternalReferenceIn] = Field(
        [], max_length=5, description="the incident's references in other council systems"
    )
    reporter_kind: Literal["staff", "councillor", "contractor"] = Field(
        "staff",
        description="whom it happened to: staff (the signed-in reporter), or a councillor or "
        "contractor on whose behalf it is recorded",
    )
    reporter_name: str = Field(
        "", max_length=256, description="the councillor's or contractor's name (sealed)"
    )


class IncidentQuery(Input):
    kind: Literal["customer", "property"]
    ref: str = Field(**REF_FIELD)

    _canonical_ref = field_validator("ref")(canonical_ref)


class Considerations(Input):
    channel: str = Field(min_length=1, description="how the behaviour presented across channels")
    circumstances: str = Field(min_length=1, description="the circumstances leading to it")
    known_to_council: bool = Field(
        strict=True, description="whether the customer is known to the council"
    )
    support_needs: str = Field(
        min_length=1, description="known disability or other need for support ('none known')"
    )


class TriageBody(Input):
    outcome: Literal[
        "no_further_action", "monitor", "refer_to_case_review", "refer_to_police", "legal_action"
    ]
    considerations: Considerations
    reference: str = Field(
        "",
        max_length=128,
        description="the crime number or legal case number, for refer_to_police and legal_action",
    )


@endpoint(
    bp,
    "/incidents",
    methods=["POST"],
    action="incident.create",
    body=IncidentBody,
    summary="Record an incident in the staff warning register (the reporter is the caller)",
    tags=["case management"],
    responses={201: "Recorded", 422: "Unknown channel or behaviour type, or missing field"},
)
def create_incident(body: IncidentBody) -> Any:
    report = incidents.IncidentReport(
        kind=body.subject.kind,
        ref=body.subject.ref,
        occurred_at=body.occurred_at,
        channel=body.channel,
        behaviour_types=tuple(body.behaviour_types),
        narrative=body.narrative,
        warning_given=body.warning_given,
        external_references=tuple((item.system, item.ref) for item in body.external_references),
        reporter_kind=body.reporter_kind,
        reporter_name=body.reporter_name,
    )
    with service_call("incident.create") as ctx:
        incident = incidents.report_incident(ctx, report)
        return created({"id": incident.id})


@endpoint(
    bp,
    "/incidents",
    action="incident.read",
    query=IncidentQuery,
    summary="A subject's incidents; narratives and triage considerations only under the "
    "details rule (a live grant for the subject or a part in the case), audited first",
    tags=["case management"],
    confidential=True,
)
def list_incidents(query: IncidentQuery) -> Any:
    with service_call("incident.read") as ctx:
        subject, found = incidents.incidents_of(ctx.session, query.kind, query.ref)
        decisions = incident_access(ctx.session, found, subject, ctx.now()) if subject else {}
        ref = subjects.normalise_ref(query.kind, query.ref)
    opened = [d.basis for d in decisions.values() if d.allowed]
    # Durably committed before a narrative is decrypted.
    audit.record(
        audit.AuditEvent(
            action="incident.read",
            subject_kind=query.kind,
            subject_ref=ref,
            outcome_reason=incidents.read_reason(len(found), opened),
        )
    )
    runtime = current_runtime()
    return json_response(
        {
            "subject": {"kind": query.kind, "ref": ref},
            "incidents": [
                incidents.incident_json(
                    runtime.settings,
                    runtime.keyring,
                    incident,
                    subject,
                    confidential=decisions[incident.id].allowed,
                )
                for incident in found
            ],
        }
    )


@endpoint(
    bp,
    "/incidents/<incident_id>/triage",
    methods=["POST"],
    action="incident.triage",
    body=TriageBody,
    summary="A manager's triage after York's considerations: no further action, monitor, "
    "refer to case review, or refer to the police or take legal action (with its reference)",
    tags=["case management"],
    responses={200: "Triaged", 409: "Already triaged"},
)
def triage_incident(incident_id: str, body: TriageBody) -> Any:
    with service_call("incident.triage") as ctx:
        incident = incidents.triage(
            ctx, incident_id, body.outcome, body.considerations.model_dump(), body.reference
        )
        return json_response({"id": incident.id, "triage": incident.triage})
