"""Case management of flags: proposal, the record, panel decisions and withdrawal."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from sidecar.api.cases import bp
from sidecar.api.endpoint import Input, endpoint
from sidecar.api.inputs import (
    ADJUSTMENTS_DESCRIPTION,
    Adjustment,
    Day,
    RestrictionIn,
    SubjectIn,
    restrictions,
)
from sidecar.api.responses import created, json_response
from sidecar.api.service_call import service_call
from sidecar.audit import writer as audit
from sidecar.lookup.service import may_read_details
from sidecar.register import flags, records
from sidecar.register.rules import FlagTerms, Seats, awaiting_roles


class ProposalBody(Input):
    subject: SubjectIn
    level: str
    categories: list[str] = Field(min_length=1, json_schema_extra={"uniqueItems": True})
    reason: str = Field(min_length=1, max_length=20000)
    control_measures: str = Field(min_length=1, max_length=20000)
    restrictions: list[str | RestrictionIn] = []
    responsible_manager: str = Field(min_length=1, max_length=128)
    review_months: int | None = Field(None, ge=1, le=36)
    incident_ids: list[str] = []
    reasonable_adjustments: str = Field("", max_length=20000)
    handling: str = Field(
        "", max_length=1000, description="recommended staff action, shown on the banner"
    )
    ends_on: Day | None = None
    adjustments: list[Adjustment] = Field([], max_length=10, description=ADJUSTMENTS_DESCRIPTION)
    warning_given_on: Day | None = Field(
        None, description="when the person was warned before this proposal"
    )
    no_warning_reason: str = Field(
        "", max_length=2000, description="why no warning was given, e.g. a physical threat"
    )
    protects: list[Literal["staff", "councillor", "contractor"]] = Field(
        ["staff"],
        min_length=1,
        max_length=3,
        description="whom the flag protects: staff, councillors, contractors",
    )
    protected_people: str = Field(
        "",
        max_length=2000,
        description="the particular councillors or contractors protected, by name (sealed)",
    )

    def proposal(self) -> flags.Proposal:
        return flags.Proposal(
            kind=self.subject.kind,
            ref=self.subject.ref,
            terms=FlagTerms(
                level=self.level,
                categories=tuple(self.categories),
                restrictions=restrictions(self.restrictions),
                handling=self.handling,
                ends_on=self.ends_on,
                adjustments=tuple(self.adjustments),
            ),
            reason=self.reason,
            control_measures=self.control_measures,
            responsible_manager=self.responsible_manager,
            reasonable_adjustments=self.reasonable_adjustments,
            review_months=self.review_months,
            incident_ids=tuple(self.incident_ids),
            warning_given_on=self.warning_given_on,
            no_warning_reason=self.no_warning_reason,
            protects=tuple(self.protects),
            protected_people=self.protected_people,
        )


class PanelBody(Input):
    role: str = Field(
        min_length=1, max_length=32, description="the panel role decided in (settings: panel.roles)"
    )
    decision: Literal["approve", "reject"]
    severity: str = Field(min_length=1, max_length=2000)
    frequency: str = Field(min_length=1, max_length=2000)
    proportionality: str = Field(min_length=1, max_length=20000)
    reasonable_adjustments: str = Field(min_length=1, max_length=20000)

    def assessment(self) -> flags.Assessment:
        return flags.Assessment(
            severity=self.severity,
            frequency=self.frequency,
            proportionality=self.proportionality,
            reasonable_adjustments=self.reasonable_adjustments,
        )


class WithdrawBody(Input):
    reason: str = Field(min_length=1, max_length=2000)


@endpoint(
    bp,
    "/flags",
    methods=["POST"],
    action="flag.propose",
    body=ProposalBody,
    summary="Propose a flag; it goes to the case review panel",
    tags=["case management"],
    responses={201: "Proposed", 422: "Unknown level, category or restriction; missing field"},
)
def propose_flag(body: ProposalBody) -> Any:
    proposal = body.proposal()
    with service_call("flag.propose") as ctx:
        flag = flags.propose(ctx, proposal)
        return created({"id": flag.id, "state": flag.state})


@endpoint(
    bp,
    "/flags/<flag_id>",
    action="flag.read",
    summary="A flag's state, terms, decisions and history; confidential fields only for "
    "users with a relationship to the case",
    tags=["case management"],
    confidential=True,
)
def read_flag(flag_id: str) -> Any:
    with service_call("flag.read") as ctx:
        now = ctx.now()
        flag = flags.load(ctx.session, flag_id)
        decision = may_read_details(ctx.session, flag, now)
        body = records.flag_json(
            ctx.session, ctx.settings, ctx.keyring, flag, confidential=decision.allowed, now=now
        )
    audit.record(
        audit.AuditEvent(
            action="flag.read",
            flag_id=flag_id,
            subject_kind=body["subject"]["kind"],
            subject_ref=body["subject"]["ref"],
            outcome_reason=f"record with confidential details ({decision.basis})"
            if decision.allowed
            else "record without confidential details",
        )
    )
    return json_response(body)


@endpoint(
    bp,
    "/flags/<flag_id>/panel-decisions",
    methods=["POST"],
    action="panel.decide",
    body=PanelBody,
    summary="A case review panel member's decision with their assessment; active after three "
    "distinct approvals, rejected on any rejection",
    tags=["case management"],
    responses={
        201: "Recorded",
        403: "You do not hold the role",
        409: "Not proposed, or you or the role already decided",
    },
)
def panel_decision(flag_id: str, body: PanelBody) -> Any:
    assessment = body.assessment()
    with service_call("panel.decide", flag_id=flag_id) as ctx:
        flag = flags.decide_panel(ctx, flag_id, body.role, body.decision, assessment)
        votes = flags.votes_of(ctx.session, flag)
        return created(
            {
                "id": flag.id,
                "state": flag.state,
                "awaiting": awaiting_roles(votes, Seats.of(ctx.settings.panel))
                if flag.state == "proposed"
                else [],
                "review_due": flag.review_due.isoformat() if flag.review_due else None,
            }
        )


@endpoint(
    bp,
    "/flags/<flag_id>/withdraw",
    methods=["POST"],
    action="flag.withdraw",
    body=WithdrawBody,
    summary="Withdraw a proposed or active flag, saying why",
    tags=["case management"],
    responses={200: "Withdrawn", 409: "The flag has ended"},
)
def withdraw_flag(flag_id: str, body: WithdrawBody) -> Any:
    with service_call("flag.withdraw", flag_id=flag_id) as ctx:
        flag = flags.withdraw(ctx, flag_id, body.reason)
        return json_response({"id": flag.id, "state": flag.state})
